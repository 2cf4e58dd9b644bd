"""Endpoint shapes end to end through the Agent: servers without tools, tool calls written as text (and
near-JSON repaired), ``content: null`` refused, forced ``tool_choice``, Ollama's, vLLM's and LM Studio's
replies, the legacy ``function_call``, and auto mode's fallback to text for a model that writes its calls.
The client's own tests cover each shape in isolation (tests/integration/test_llm_client.py); these prove the
whole turn works on top of them.
"""

from __future__ import annotations

import json

import pytest
import structlog

from bot.wiring import build_agent
from core import ReplyKind
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for

COUNT_SQL = "SELECT count(*) AS n FROM orders WHERE status = 'shipped'"


async def test_server_without_tools_is_detected_once_and_answers_in_text_mode(fresh_db: str) -> None:
    await load_shop(fresh_db)
    async with llm.ScriptedLlmServer(reject_tools=True) as server:
        server.script(
            llm.sql_block(COUNT_SQL, prose="Let me count them."), llm.text("30 orders have shipped."),
            llm.text_tool_call("ask_clarification", {"question": "Shipped when: this year or ever?"}),
        )
        settings = settings_for(fresh_db, llm_url=server.base_url)
        settings.llm.tool_mode = "auto"
        settings.llm.answer_text = "model"  # the model answers from the result: its text-mode request is checked
        agent = build_agent(settings)
        try:
            reply = await final_reply(agent, message("How many orders shipped?"))
            asked = await final_reply(agent, message("and recently?"))
        finally:
            await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.sql == (COUNT_SQL,)
    assert reply.table is not None and reply.table.rows == ((30,),)
    assert asked.kind is ReplyKind.INFO and asked.text == "Shipped when: this year or ever?"
    with_tools = [r for r in server.requests if "tools" in r]
    assert len(with_tools) == 1  # rejected once, then remembered: text mode from then on
    second_step = server.requests[2]["messages"]  # type: ignore[index]
    assert second_step[0]["role"] == "system" and "fenced ```sql block" in second_step[0]["content"]
    assert any(m["role"] == "user" and str(m["content"]).startswith("Result of run_query:") for m in second_step)


@pytest.mark.parametrize("style", ["json_fence", "tool_call_tag", "bare_json", "mistral"])
async def test_tool_calls_written_as_text_are_run(fresh_db: str, llm_server: llm.ScriptedLlmServer,
                                                  style: llm.TextCallStyle) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.text_tool_call("run_query", {"sql": COUNT_SQL}, style=style))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("How many orders shipped?"))
    finally:
        await agent.aclose()
    # answer_text "auto": a query the model wrote as text is answered from its result, with no second call
    assert reply.kind is ReplyKind.ANSWER and reply.sql == (COUNT_SQL,) and reply.text == "n: 30"
    assert len(llm_server.requests) == 1


async def test_server_refusing_null_content_gets_a_whole_multi_step_turn(fresh_db: str) -> None:
    await load_shop(fresh_db)
    async with llm.ScriptedLlmServer(reject_null_content=True) as server:
        server.script(
            llm.tool_call("describe_table", {"table": "orders"}),  # content null in the reply
            llm.tool_call("run_query", {"sql": COUNT_SQL}),
            llm.text("30 orders have shipped."),
        )
        agent = build_agent(settings_for(fresh_db, llm_url=server.base_url))
        try:
            reply = await final_reply(agent, message("How many orders shipped?"))
        finally:
            await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.sql == (COUNT_SQL,)
    assistant_turns = [m for m in server.requests[-1]["messages"] if m["role"] == "assistant"]  # type: ignore[index]
    assert len(assistant_turns) == 2 and all(m["content"] == "" for m in assistant_turns)


async def test_forced_tool_choice_applies_to_the_first_step_only(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.tool_call("run_query", {"sql": COUNT_SQL}), llm.text("30."))
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.llm.tool_choice = "required"
    agent = build_agent(settings)
    try:
        reply = await final_reply(agent, message("How many orders shipped?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER
    assert [r["tool_choice"] for r in llm_server.requests] == ["required", "auto"]


async def test_endpoint_failures_end_in_one_clear_message(fresh_db: str, llm_server: llm.ScriptedLlmServer) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.raw(200, "<html>gateway login</html>"), llm.error(429, "slow down"),
                      llm.raw(503, {"error": {"message": "model loading"}}))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        replies = [await final_reply(agent, message(f"question {i}")) for i in range(3)]
    finally:
        await agent.aclose()
    assert [r.kind for r in replies] == [ReplyKind.ERROR] * 3
    assert "not a chat completion" in replies[0].text
    assert "rate limiting" in replies[1].text
    assert "HTTP 503: model loading" in replies[2].text
    assert all("Traceback" not in r.text and "sk-test" not in r.text for r in replies)


# -- other servers' shapes, one whole turn each -----------------------------------------------------

COUNT_ARGS = {"sql": COUNT_SQL}
SHAPES = {
    "ollama_no_id_no_index": llm.ollama_tool_call("run_query", COUNT_ARGS),
    "ollama_index_without_id": llm.ollama_tool_call("run_query", COUNT_ARGS, with_index=True),
    "ollama_arguments_as_object": llm.ollama_tool_call("run_query", COUNT_ARGS, with_id=True, arguments_as_object=True),
    "ollama_finish_reason_stop": llm.ollama_tool_call("run_query", COUNT_ARGS, finish_reason="stop"),
    "vllm_content_null": llm.vllm_tool_call("run_query", COUNT_ARGS),
    "vllm_reasoning_content": llm.vllm_tool_call(
        "run_query", COUNT_ARGS,
        reasoning='I could call {"name": "run_query", "arguments": {"sql": "DELETE FROM orders"}}'),
    "lmstudio_no_content_key": llm.lmstudio_tool_call("run_query", COUNT_ARGS),
    "legacy_function_call": llm.legacy_function_call("run_query", COUNT_ARGS),
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_other_servers_tool_call_shapes_run_one_whole_turn(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, shape: str
) -> None:
    await load_shop(fresh_db)
    llm_server.script(SHAPES[shape], llm.vllm_text(
        "30 orders have shipped.", reasoning='```json\n{"name": "run_query", "arguments": {"sql": "SELECT 1"}}\n```'))
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.llm.tool_mode = "auto"
    agent = build_agent(settings)
    try:
        reply = await final_reply(agent, message("How many orders shipped?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.text == "30 orders have shipped."
    assert reply.sql == (COUNT_SQL,)  # once: the JSON in reasoning_content was neither run nor shown
    assert reply.table is not None and reply.table.rows == ((30,),)
    assert len(llm_server.requests) == 2 and all("tools" in r for r in llm_server.requests)  # stayed native
    assert all(not r.get("stream") for r in llm_server.requests)  # pgbot never asks for a stream
    follow_up = llm_server.requests[1]["messages"]  # type: ignore[index]
    call_id = follow_up[-2]["tool_calls"][0]["id"]
    assert call_id and follow_up[-1] == {"role": "tool", "content": follow_up[-1]["content"], "tool_call_id": call_id}


# -- tool calls written as near-JSON or as SQL, repaired and run -------------------------------------

REPAIRS = {
    "python_triple_quotes": '```json\n{"name": "run_query", "arguments": {"sql": """SELECT count(*) AS n\n'
                            "FROM orders WHERE status = 'shipped'\"\"\"}}\n```",
    "single_quotes_trailing_commas": "```json\n{'name': 'run_query', 'arguments': {'sql': \""
                                     + COUNT_SQL + "\",},}\n```",
    "tool_call_tag_with_tool_and_parameters": '<tool_call>\n{"tool": "run_query", "parameters": {"sql": "'
                                              + COUNT_SQL.replace("'", "\\u0027") + '"}}\n</tool_call>',
    "fenced_call_after_prose_and_sql": (
        "To find the number of shipped orders, I'll run a simple query:\n```sql\nSELECT count(*) FROM orders;\n```\n"
        'Calling the tool:\n```json\n{"name": "run_query", "arguments": {"sql": "' + COUNT_SQL + '"}}\n```\n'
        "The final answer is: **12**"),
    "function_wrapper_arguments_as_json_string": '{"function": {"name": "run_query", "arguments": '
                                                 + json.dumps(json.dumps(COUNT_ARGS)) + "}}",
    "arguments_string_in_python_quotes": '{"name": "run_query", "arguments": "{\'sql\': \\"' + COUNT_SQL + '\\"}"}',
    "sql_fence_instead_of_a_call": f"Let me count them.\n```sql\n{COUNT_SQL};\n```",
    "unlabelled_fence_with_sql": f"```\n{COUNT_SQL}\n```",
    "bare_select": COUNT_SQL + ";",
}


@pytest.mark.parametrize("repair", list(REPAIRS))
async def test_near_json_and_sql_in_text_are_repaired_and_run_in_native_mode(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, repair: str
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.text(REPAIRS[repair]))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))  # tool_mode = "native"
    try:
        reply = await final_reply(agent, message("How many orders shipped?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.text in ("n: 30", "count: 30")  # stated from the result
    assert len(llm_server.requests) == 1
    assert reply.table is not None and reply.table.rows == ((30,),)
    assert len(reply.sql) == 1 and " ".join(reply.sql[0].split()) == COUNT_SQL
    assert "**12**" not in reply.text


async def test_auto_mode_falls_back_to_text_for_a_model_that_writes_its_calls_and_remembers_it(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(
        llm.text_tool_call("run_query", COUNT_ARGS, prose="I'll run a query."), llm.text("30 orders have shipped."),
        llm.sql_block(COUNT_SQL), llm.text("Still 30."),
    )
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.llm.tool_mode = "auto"
    settings.llm.answer_text = "model"  # each question takes two requests: the mode of each is checked
    with structlog.testing.capture_logs() as logs:
        agent = build_agent(settings)
        try:
            first = await final_reply(agent, message("How many orders shipped?"))
        finally:
            await agent.aclose()
        agent = build_agent(settings)  # a new client for the same endpoint and model: decided already
        try:
            second = await final_reply(agent, message("How many orders shipped now?"))
        finally:
            await agent.aclose()
    assert first.kind is second.kind is ReplyKind.ANSWER and first.sql == second.sql == (COUNT_SQL,)
    assert ["tools" in r for r in llm_server.requests] == [True, False, False, False]
    assert "fenced ```sql block" in llm_server.requests[1]["messages"][0]["content"]  # type: ignore[index]
    switches = [e for e in logs if e["event"] == "llm.tools_unsupported"]
    assert len(switches) == 1 and switches[0]["model"] == "test-model" and "as text" in switches[0]["why"]

"""Endpoint shapes end to end through the Agent: servers without tools, tool calls written as text,
``content: null`` refused, forced ``tool_choice``. The client's own tests cover each shape in isolation
(tests/integration/test_llm_client.py); these prove the whole turn works on top of them.
"""

from __future__ import annotations

import pytest

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
    llm_server.script(llm.text_tool_call("run_query", {"sql": COUNT_SQL}, style=style), llm.text("30."))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("How many orders shipped?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.sql == (COUNT_SQL,) and reply.text == "30."


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

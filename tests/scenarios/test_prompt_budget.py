"""What each model call costs, through the real Agent over HTTP (scripted model, real Postgres).

A prompt whose prefix repeats from one call to the next (servers reuse it), ``[llm] max_tokens`` on every
call with a clear error when the model stops there, token counts in the metrics and the log, and the
tools offered: the read set, or every tool when the question, the thread or the model asks for them.
"""

from __future__ import annotations

import json
from typing import Any

from structlog.testing import capture_logs

from bot.wiring import build_agent
from core import ReplyKind, Settings
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for

READ_SET = ["run_query", "list_tables", "describe_table", "ask_clarification", "more_tools"]
SHIPPED = "SELECT count(*) FROM orders WHERE status = 'shipped'"


def settings(dsn: str, url: str, **llm_options: Any) -> Settings:
    s = settings_for(dsn, llm_url=url)
    s.llm = s.llm.model_copy(update=llm_options)
    return s


def tool_names(request: llm.JsonObject) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]  # type: ignore[attr-defined,index]


def messages(request: llm.JsonObject) -> list[dict[str, Any]]:
    return request["messages"]  # type: ignore[return-value]


async def test_consecutive_questions_share_the_prefix_through_the_schema_and_the_tools(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(
        llm.tool_call("run_query", {"sql": SHIPPED}), llm.text("30 have shipped."),
        llm.text("None last month."),  # another thread, a question with a relative date
        llm.text("Still 30."),  # a follow-up in the first thread
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        await final_reply(agent, message("How many orders shipped?", thread="t1"))
        await final_reply(agent, message("How many orders were placed last month?", thread="t2"))
        await final_reply(agent, message("and now?", thread="t1"))
    finally:
        await agent.aclose()
    first, step_two, other, follow_up = llm_server.requests
    system = messages(first)[0]
    assert system["role"] == "system" and "public.orders(" in system["content"]
    assert "now() is" not in system["content"]  # the clock changes every call: never in the stable part
    assert "\nToday is 20" in system["content"] and "(database time zone " in system["content"]  # once a day
    for later in (step_two, other, follow_up):
        assert messages(later)[0] == system  # byte for byte: the schema and rules are reused
        assert json.dumps(later["tools"]) == json.dumps(first["tools"])  # the same tools, in the same order
    # The question's own material rides with it, last: the clock, the resolved dates, the question.
    asked = messages(other)[-1]["content"]
    assert messages(first)[-1]["content"] == "How many orders shipped?"  # nothing of its own to add
    assert "from the database's clock (now() = " in asked and '"last month": from' in asked
    assert asked.endswith("\n\nQuestion: How many orders were placed last month?")
    # Within a turn, each call extends the previous one: everything sent before is sent again unchanged.
    assert messages(step_two)[: len(messages(first))] == messages(first)
    # A follow-up replays the history with the question as typed, and its new question last.
    history = [m["content"] for m in messages(follow_up)[1:-1]]
    assert history[0] == "How many orders shipped?" and "30 have shipped." in history
    assert llm.question_of(messages(follow_up)[-1]["content"]) == "and now?"


async def test_max_tokens_is_sent_on_every_call_and_tokens_are_counted(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    usage = {"prompt_tokens": 1200, "completion_tokens": 20, "total_tokens": 1220,
             "prompt_tokens_details": {"cached_tokens": 1024}}
    llm_server.script(
        llm.tool_call("run_query", {"sql": SHIPPED}),
        llm.raw(200, _completion({"role": "assistant", "content": "30 have shipped."}, "stop", usage)),
    )
    agent = build_agent(settings(fresh_db, llm_server.base_url, max_tokens=333))
    try:
        with capture_logs() as logs:
            reply = await final_reply(agent, message("How many orders shipped?"))
        metrics = agent.ops.metrics.render().decode()
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER
    assert [r["max_tokens"] for r in llm_server.requests] == [333, 333]
    assert 'pgbot_llm_tokens_total{type="cached"} 1024.0' in metrics
    assert "pgbot_llm_call_prompt_tokens_count 2.0" in metrics and "pgbot_turn_llm_tokens_count 1.0" in metrics
    calls = [e for e in logs if e["event"] == "llm_call"]
    turn = next(e for e in logs if e["event"] == "llm_turn")
    assert len(calls) == 2 and calls[1]["cached_tokens"] == 1024 and calls[1]["finish_reason"] == "stop"
    assert turn["calls"] == 2 and turn["cached_tokens"] == 1024
    assert turn["prompt_tokens"] == calls[0]["prompt_tokens"] + 1200 > 1200


async def test_a_reply_cut_off_at_max_tokens_is_a_clear_error_not_half_an_answer(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    cut_call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "run_query", "arguments": '{"sql": "SELECT cou'}}]}
    whole_call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c2", "type": "function", "function": {"name": "run_query", "arguments": json.dumps({"sql": SHIPPED})}}]}
    llm_server.script(
        llm.text("There are many orders, and to count them we first need to consider", finish_reason="length"),
        llm.raw(200, _completion(cut_call, "length")),
        llm.raw(200, _completion(whole_call, "length")),  # a whole tool call is usable, whatever the reason
        llm.text("30 have shipped."),
    )
    agent = build_agent(settings(fresh_db, llm_server.base_url, max_tokens=64))
    try:
        prose = await final_reply(agent, message("How many orders shipped?"))
        broken_call = await final_reply(agent, message("How many orders shipped?"))
        whole = await final_reply(agent, message("How many orders shipped?"))
        metrics = agent.ops.metrics.render().decode()
    finally:
        await agent.aclose()
    expected = ("The model stopped at the max_tokens limit (64) before answering; raise [llm] max_tokens or ask "
                "a narrower question.")
    assert prose.kind is ReplyKind.ERROR and prose.text == expected
    assert broken_call.kind is ReplyKind.ERROR and broken_call.text == expected and broken_call.sql == ()
    assert "we first need" not in prose.text  # the cut-off prose is never shown as the answer
    assert whole.kind is ReplyKind.ANSWER and whole.sql == (SHIPPED,)
    assert 'pgbot_llm_calls_total{outcome="LlmLengthError"} 2.0' in metrics


async def test_a_model_that_wants_max_completion_tokens_gets_it(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    refusal = ("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
               "instead.")
    # No numbers in the answers: nothing for core.agent.grounding to send back.
    llm_server.script(llm.error(400, refusal), llm.text("Plenty of orders."), llm.text("Still plenty."))
    agent = build_agent(settings(fresh_db, llm_server.base_url, max_tokens=200, tool_mode="auto"))
    try:
        first = await final_reply(agent, message("How many orders are there?"))
        second = await final_reply(agent, message("And now?"))
    finally:
        await agent.aclose()
    assert first.kind is ReplyKind.ANSWER and second.kind is ReplyKind.ANSWER
    refused, retried, later = llm_server.requests
    assert refused["max_tokens"] == 200 and "max_completion_tokens" not in refused
    assert retried["max_completion_tokens"] == 200 and "max_tokens" not in retried
    assert later["max_completion_tokens"] == 200 and "max_tokens" not in later
    assert retried["tools"] == refused["tools"]  # the 400 was about the budget: still native tool calls


async def test_management_tools_only_when_the_question_the_thread_or_the_model_asks(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(
        llm.text("Many orders."),  # 0: a read question (no numbers: nothing for core.agent.grounding to send back)
        llm.text("It is slow because …"),  # 1: a diagnostics question
        # 2: the model asks for more, with arguments it made up (small models name the tool and table they are
        # after): ignored, not refused, so the switch happens at once
        llm.tool_call("more_tools", {"tool": "explain_query", "table": "orders"}),
        llm.text("Here is the plan."),  # 3: ...and the next call of the turn has them
        llm.text("Sure."),  # 4: the same thread, a read question: the thread is about them now
        llm.text("Many orders."),  # 5: a new thread: the read set again
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        await final_reply(agent, message("How many orders are there?"))
        await final_reply(agent, message("Why is SELECT * FROM orders slow?"))
        await final_reply(agent, message("Something about the orders, please", thread="t"))
        await final_reply(agent, message("and the customers?", thread="t"))
        await final_reply(agent, message("How many orders are there?"))
    finally:
        await agent.aclose()
    names = [tool_names(r) for r in llm_server.requests]
    full = names[1]
    assert names[0] == READ_SET == names[2] == names[5]
    assert {"propose_change", "explain_query", "propose_backup", "export_csv", "propose_migration"} <= set(full)
    assert "more_tools" not in full and full[:3] == ["run_query", "list_tables", "describe_table"]
    assert names[3] == full == names[4]
    offered = [m for m in messages(llm_server.requests[3]) if m["role"] == "tool"]
    assert offered[0]["content"].startswith("More tools are offered now")
    system = messages(llm_server.requests[0])[0]["content"]
    assert "call more_tools" in system and system == messages(llm_server.requests[1])[0]["content"]
    # Tool descriptions are short: the read set's definitions stay small.
    assert len(json.dumps(llm_server.requests[0]["tools"])) < 2000


async def test_disabled_tools_are_never_offered_nor_run(fresh_db: str, llm_server: llm.ScriptedLlmServer) -> None:
    await load_shop(fresh_db)
    llm_server.script(
        llm.tool_call("more_tools"),
        llm.tool_call("propose_change", {"sql": "DELETE FROM orders"}),
        llm.text("I cannot do that here."),
        llm.text("Deleting is not available."),
    )
    agent = build_agent(settings(fresh_db, llm_server.base_url, disabled_tools=["propose_change", "export_csv"]))
    try:
        asked = await final_reply(agent, message("Tell me about orders"))
        delete = await final_reply(agent, message("Delete all cancelled orders"))
    finally:
        await agent.aclose()
    for request in llm_server.requests:
        assert not {"propose_change", "export_csv"} & set(tool_names(request))
    assert "explain_query" in tool_names(llm_server.requests[1]) and "explain_query" in tool_names(
        llm_server.requests[3])
    refused = [m for m in messages(llm_server.requests[2]) if m["role"] == "tool"][-1]["content"]
    assert refused.startswith("ERROR: There is no tool named 'propose_change'")
    assert asked.kind is ReplyKind.ANSWER and asked.sql == () and delete.kind is ReplyKind.ANSWER
    # With more_tools disabled too, the read set has no way to ask, and the rules do not mention it.
    llm_server.script(llm.text("90."))
    agent = build_agent(settings(fresh_db, llm_server.base_url, disabled_tools=["more_tools"]))
    try:
        await final_reply(agent, message("How many orders are there?"))
    finally:
        await agent.aclose()
    assert tool_names(llm_server.requests[-1]) == ["run_query", "list_tables", "describe_table", "ask_clarification"]
    assert "more_tools" not in messages(llm_server.requests[-1])[0]["content"]


def _completion(message: dict[str, Any], finish: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 64, "total_tokens": 74}}


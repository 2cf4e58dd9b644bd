"""A whole conversation over real HTTP (scripted OpenAI-compatible server), real Postgres and real Redis."""

from __future__ import annotations

import asyncpg

from bot.wiring import build_agent
from core import ReplyKind
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for


async def test_two_turn_conversation_follow_up_uses_history(fresh_db: str, llm_server, redis_url: str) -> None:
    await load_shop(fresh_db)
    first_sql = "SELECT count(*) AS shipped FROM orders WHERE status = 'shipped'"
    second_sql = (
        "SELECT date_trunc('month', created_at)::date AS month, count(*) AS shipped FROM orders "
        "WHERE status = 'shipped' GROUP BY 1 ORDER BY 1"
    )
    llm_server.script(
        llm.tool_call("run_query", {"sql": first_sql}),
        llm.text("30 orders have shipped."),
        llm.tool_call("run_query", {"sql": second_sql}),
        llm.text("Shipped orders per month are in the table."),
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url))
    thread = "thread-two-turns"
    try:
        first = await final_reply(agent, message("How many orders shipped?", thread=thread))
        second = await final_reply(agent, message("and by month?", thread=thread))
    finally:
        await agent.aclose()

    assert first.kind is ReplyKind.ANSWER
    assert first.text == "30 orders have shipped."
    assert first.sql == (first_sql,)
    assert first.table is not None and first.table.rows == ((30,),)

    assert second.kind is ReplyKind.ANSWER
    assert second.sql == (second_sql,)
    assert second.table is not None
    assert [row[1] for row in second.table.rows] == [10, 9, 10, 1]  # Jan-Apr 2026 from the fixture data

    # The prompt of turn one: rules, the schema context, the question.
    sent = llm_server.requests[0]["messages"]
    assert sent[0]["role"] == "system" and "public.orders(" in sent[0]["content"]
    assert "One row per order" in sent[0]["content"]
    assert sent[-1]["role"] == "user" and llm.question_of(sent[-1]["content"]) == "How many orders shipped?"
    assert {t["function"]["name"] for t in llm_server.requests[0]["tools"]} >= {"run_query", "describe_table"}
    # Turn two reached the model with turn one's question, tool call, result and answer before it.
    follow_up = llm_server.requests[2]["messages"]
    contents = [m.get("content") or "" for m in follow_up]
    assert "How many orders shipped?" in contents
    assert any("shipped\n30" in c for c in contents), contents
    assert "30 orders have shipped." in contents
    assert follow_up[-1]["role"] == "user" and llm.question_of(follow_up[-1]["content"]) == "and by month?"
    assert any(m.get("tool_calls") for m in follow_up)


async def test_model_corrects_its_sql_after_a_postgres_error(fresh_db: str, llm_server) -> None:
    await load_shop(fresh_db)
    llm_server.script(
        llm.tool_call("run_query", {"sql": "SELECT count(*) FROM order"}),
        llm.tool_call("run_query", {"sql": "SELECT count(*) FROM orders"}),
        llm.text("There are 90 orders."),
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("How many orders?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER
    assert reply.sql == ("SELECT count(*) FROM orders",)
    retry_prompt = llm_server.requests[1]["messages"][-1]
    assert retry_prompt["role"] == "tool" and "syntax error" in retry_prompt["content"]


async def test_write_through_the_read_path_is_refused_and_nothing_changes(fresh_db: str, llm_server) -> None:
    await load_shop(fresh_db)
    hostile = [  # one change (DELETE, a data-modifying CTE, DROP) is held for approval instead: test_changes_held
        "COMMIT; DELETE FROM orders",
        "SELECT 1; DROP TABLE orders",
        "RESET ROLE",
        "SET ROLE postgres",
        "SELECT pg_terminate_backend(pg_backend_pid())",
        "SELECT lo_import('/etc/passwd')",
    ]
    llm_server.script(*(llm.tool_call("run_query", {"sql": sql}) for sql in hostile))
    llm_server.script(llm.text("I cannot do that."))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, max_rows=10), )
    agent.settings.llm.max_steps = len(hostile) + 1
    try:
        reply = await final_reply(agent, message("delete every order"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.sql == ()
    tool_results = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_results) == len(hostile)
    assert all(r.startswith("ERROR: Refused") for r in tool_results), tool_results
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 90
    finally:
        await conn.close()


async def test_invalid_tool_json_and_unknown_tool_are_fed_back(fresh_db: str, llm_server) -> None:
    await load_shop(fresh_db)
    llm_server.script(
        llm.tool_call("run_query", '{"sql": "SELECT 1'),
        llm.tool_call("drop_everything", {"really": True}),
        llm.tool_call("run_query", {"sql": "SELECT 1 AS one"}),
        llm.text("One."),
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("one?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.sql == ("SELECT 1 AS one",)
    results = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert "Invalid arguments for run_query" in results[0]
    assert "no tool named 'drop_everything'" in results[1]


async def test_a_model_that_loops_on_failing_sql_is_stopped(fresh_db: str, llm_server) -> None:
    await load_shop(fresh_db)
    llm_server.script(*(llm.tool_call("run_query", {"sql": "SELECT nope FROM orders"}) for _ in range(8)))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("loop please"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ERROR
    assert "could not finish" in reply.text and 'column "nope" does not exist' in reply.text
    assert len(llm_server.requests) == 3  # stopped after the same failure three times, not the step limit


async def test_huge_result_is_capped_and_a_slow_query_times_out(fresh_db: str, llm_server) -> None:
    llm_server.script(
        llm.tool_call("run_query", {"sql": "SELECT g, repeat('x', 5000) AS wide FROM generate_series(1, 1000000) g"}),
        llm.text("Lots of rows."),
        llm.tool_call("run_query", {"sql": "SELECT pg_sleep(30)"}),
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, max_rows=100, statement_timeout_ms=300))
    try:
        big = await final_reply(agent, message("everything"))
        slow = await final_reply(agent, message("sleep"))
    finally:
        await agent.aclose()
    assert big.table is not None and big.table.row_count == 100 and big.table.truncated
    assert all(len(str(row[1])) < 600 for row in big.table.rows)  # wide values cut for chat
    tool_text = next(m["content"] for m in llm_server.requests[1]["messages"] if m["role"] == "tool")
    assert "cut at the cap of 100" in tool_text
    assert slow.kind is ReplyKind.ERROR and "statement timeout" in slow.text


async def test_disabled_tools_are_never_offered_and_cannot_be_called(fresh_db: str, llm_server) -> None:
    """``[llm] disabled_tools``: a team that wants no restores from chat; a model that calls one anyway
    (an injected instruction, a stale habit) is told the tool does not exist and nothing is proposed."""
    await load_shop(fresh_db)
    llm_server.script(
        llm.tool_call("propose_restore", {"file": "shop.dump", "into": "shop", "overwrite": True}),
        llm.text("I cannot restore from here."),
    )
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.llm.disabled_tools = ["propose_restore", "propose_backup"]
    agent = build_agent(settings)
    try:
        reply = await final_reply(agent, message("restore shop over itself"))
    finally:
        await agent.aclose()
    offered = {t["function"]["name"] for t in llm_server.requests[0]["tools"]}
    assert "propose_restore" not in offered and "propose_backup" not in offered and "run_query" in offered
    assert reply.kind is ReplyKind.ANSWER and reply.approval is None
    results = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert "no tool named 'propose_restore'" in results[0]
    assert set(agent.tools.executors) >= {"backup", "restore"}  # restores approved before the change still run


def test_an_unknown_disabled_tool_is_a_config_error_naming_the_tools() -> None:
    import pytest

    from core.errors import ConfigError
    from core.tools.registry import load_tools

    with pytest.raises(ConfigError) as caught:
        load_tools().without(["propose_restore", "drop_everything"])
    assert "unknown tool(s) drop_everything" in caught.value.problems[0]
    assert "propose_restore" in caught.value.problems[0]  # the list of real names, to fix the typo

"""The accuracy techniques through the real Agent: scripted HTTP model, real Postgres.

Each technique shows up in what the model is sent (or in what the user sees), and disappears when its
``[accuracy]`` switch is off.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from bot.wiring import build_agent
from core import ReplyKind, Settings
from core.prompt.accuracy import UNVERIFIED_NOTE
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for


def settings_with(dsn: str, url: str, **accuracy: Any) -> Settings:
    settings = settings_for(dsn, llm_url=url)
    settings.accuracy = settings.accuracy.model_copy(update=accuracy)
    return settings


def system_prompt(server: llm.ScriptedLlmServer, index: int = 0) -> str:
    return llm.prompt_text(server.requests[index])


def tool_results(server: llm.ScriptedLlmServer, index: int = -1) -> list[str]:
    return [m["content"] for m in server.requests[index]["messages"] if m["role"] == "tool"]  # type: ignore[index]


async def test_prompt_has_version_values_and_dates_and_the_answer_states_the_dates(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    conn = await asyncpg.connect(fresh_db)
    try:  # a time zone far from UTC: month boundaries must follow the database, not the client
        await conn.execute(f"ALTER DATABASE \"{fresh_db.rsplit('/', 1)[1]}\" SET timezone = 'Pacific/Auckland'")
    finally:
        await conn.close()
    conn = await asyncpg.connect(fresh_db)
    try:
        first_day, last_day, version = await conn.fetchrow(
            "SELECT (date_trunc('month', now()) - interval '1 month')::date::text, "
            "(date_trunc('month', now()) - interval '1 day')::date::text, current_setting('server_version')"
        )
    finally:
        await conn.close()
    sql = ("SELECT count(*) FROM orders WHERE status = 'shipped' AND created_at >= date_trunc('month', now()) "
           "- interval '1 month' AND created_at < date_trunc('month', now())")
    llm_server.script(llm.tool_call("run_query", {"sql": sql}), llm.text("0 orders shipped last month."))
    agent = build_agent(settings_with(fresh_db, llm_server.base_url))
    try:
        reply = await final_reply(agent, message("How many orders shipped last month?"))
    finally:
        await agent.aclose()

    prompt = system_prompt(llm_server)
    assert f"(PostgreSQL {version.split(' (')[0]})." in prompt
    assert "TimeZone Pacific/Auckland" in prompt  # the resolved dates state the clock and zone
    assert f'"last month": from {first_day} 00:00:00+1' in prompt  # +12 or +13 (daylight saving)
    assert "col >= date_trunc('month', now()) - interval '1 month' AND col < date_trunc('month', now())" in prompt
    # The shop tables were never analysed: the values come from the bounded DISTINCT fallback.
    assert "public.orders.status: 'pending', 'shipped'" in prompt
    assert "public.customers.country: 'FR'" in prompt
    assert reply.kind is ReplyKind.ANSWER and reply.sql == (sql,)
    note = f"Dates used (database time zone Pacific/Auckland): last month = {first_day} to {last_day}."
    assert reply.text == f"0 orders shipped last month.\n\n{note}"
    assert reply.notes.dates == note


@pytest.mark.parametrize(
    ("switch", "absent"),
    [
        ("server_version", "(PostgreSQL "),
        ("value_hints", "Values of low-cardinality text columns"),
        ("relative_dates", "Relative dates in the question"),
        ("clarifying_questions", "ask_clarification"),
    ],
)
async def test_each_technique_can_be_switched_off(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, switch: str, absent: str
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.text("Nothing to look up."), llm.text("Nothing to look up."))
    question = "How many orders were shipped this month, by status?"
    for enabled in (True, False):
        agent = build_agent(settings_with(fresh_db, llm_server.base_url, **{switch: enabled}))
        try:
            await final_reply(agent, message(question))
        finally:
            await agent.aclose()
    on, off = system_prompt(llm_server, 0), system_prompt(llm_server, 1)
    assert absent in on and absent not in off
    tools_on = {t["function"]["name"] for t in llm_server.requests[0]["tools"]}  # type: ignore[index]
    tools_off = {t["function"]["name"] for t in llm_server.requests[1]["tools"]}  # type: ignore[index]
    assert "ask_clarification" in tools_on
    assert ("ask_clarification" in tools_off) is (switch != "clarifying_questions")


async def test_explain_catches_planning_errors_and_hints_how_to_fix(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    bad = "SELECT count(*) FROM orders WHERE state = 'shipped'"
    good = "SELECT count(*) FROM orders WHERE status = 'shipped'"
    for explain in (True, False):
        llm_server.script(llm.tool_call("run_query", {"sql": bad}), llm.tool_call("run_query", {"sql": good}),
                          llm.text("30 shipped."))
        agent = build_agent(settings_with(fresh_db, llm_server.base_url, explain_first=explain))
        try:
            reply = await final_reply(agent, message("shipped orders?"))
        finally:
            await agent.aclose()
        assert reply.kind is ReplyKind.ANSWER and reply.sql == (good,)
        (hint, _) = tool_results(llm_server)
        assert 'column "state" does not exist' in hint
        assert "Near: …) FROM orders WHERE state = 'shipped'\n" in hint  # where Postgres pointed
        assert "Use only the columns listed below" in hint  # the retry hint for an unknown column
        assert "Columns of the tables in this query:\norders(id integer, customer_id integer" in hint
        assert ("while planning it (EXPLAIN; nothing ran)" in hint) is explain
        assert hint.startswith("ERROR: Postgres error:") is not explain


async def test_the_columns_in_a_failure_hint_are_only_those_the_role_may_read(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("DROP ROLE IF EXISTS hint_reader; CREATE ROLE hint_reader; "
                           "GRANT SELECT (id, status) ON orders TO hint_reader")
        bad = "SELECT count(*) FROM orders WHERE state = 'shipped'"
        llm_server.script(llm.tool_call("run_query", {"sql": bad}), llm.text("Cannot tell."))
        settings = settings_for(fresh_db, llm_url=llm_server.base_url, roles={"slack:U1": "hint_reader"})
        agent = build_agent(settings)
        try:
            await final_reply(agent, message("shipped orders?"))
        finally:
            await agent.aclose()
    finally:
        await conn.execute("DROP OWNED BY hint_reader; DROP ROLE hint_reader")
        await conn.close()
    (hint,) = tool_results(llm_server)
    assert "orders(id integer, status text)" in hint  # not customer_id, total, … which the role cannot read


@pytest.mark.parametrize(
    ("question", "idiom"),
    [
        ("Which customers have never placed an order?", "WHERE NOT EXISTS (SELECT 1 FROM other o"),
        ("List every employee together with the name of their manager.", "LEFT JOIN the other table"),
        ("Show orders per month with a running total.", "sum(count(*)) OVER (ORDER BY"),
    ],
)
async def test_shape_hints_name_the_idiom_the_wording_asks_for_and_can_be_switched_off(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, question: str, idiom: str
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.text("Nothing to look up."), llm.text("Nothing to look up."),
                      llm.text("Nothing to look up."))
    for enabled in (True, False):
        agent = build_agent(settings_with(fresh_db, llm_server.base_url, shape_hints=enabled))
        try:
            await final_reply(agent, message(question))
        finally:
            await agent.aclose()
    prompts = [llm.prompt_text(request) for request in llm_server.requests]
    assert idiom in prompts[0] and "SQL shape for this question:" in prompts[0]
    assert "SQL shape for this question:" not in prompts[-1]
    # The hint travels with the question, after the stable system message (the prefix stays reusable).
    first_system = llm_server.requests[0]["messages"][0]["content"]  # type: ignore[index]
    assert "SQL shape" not in first_system


async def test_the_retry_bound_is_configurable_and_names_the_failure(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(*(llm.tool_call("run_query", {"sql": "SELECT nope FROM orders"}) for _ in range(8)))
    agent = build_agent(settings_with(fresh_db, llm_server.base_url, max_repeated_failures=2))
    try:
        reply = await final_reply(agent, message("loop please"))
    finally:
        await agent.aclose()
    assert len(llm_server.requests) == 2
    assert reply.kind is ReplyKind.ERROR
    assert "the same problem came up 2 times in a row" in reply.text
    assert 'column "nope" does not exist' in reply.text and "SELECT nope FROM orders" in reply.text


async def test_with_retries_off_the_first_failed_query_ends_the_turn(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT nope FROM orders"}),
                      llm.tool_call("run_query", {"sql": "SELECT 1"}))
    agent = build_agent(settings_with(fresh_db, llm_server.base_url, sql_retries=False))
    try:
        reply = await final_reply(agent, message("one try"))
    finally:
        await agent.aclose()
    assert len(llm_server.requests) == 1 and llm_server.pending == 1
    assert reply.kind is ReplyKind.ERROR and "retries are switched off" in reply.text


async def test_clarifying_question_then_the_follow_up_reaches_the_model_with_history(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    question = "Revenue from shipped orders only, or from all orders?"
    sql = "SELECT sum(total) FROM orders WHERE status = 'shipped'"
    llm_server.script(
        llm.tool_call("ask_clarification", {"question": question}),
        llm.tool_call("run_query", {"sql": sql}),
        llm.text("Shipped orders brought in 2092.50."),
    )
    agent = build_agent(settings_with(fresh_db, llm_server.base_url))
    thread = "clarify-thread"
    try:
        asked = await final_reply(agent, message("What's our revenue?", thread=thread))
        answered = await final_reply(agent, message("shipped only", thread=thread))
    finally:
        await agent.aclose()
    assert asked.kind is ReplyKind.INFO and asked.text == question
    assert asked.sql == () and asked.table is None and asked.answer_id is None
    assert asked.clarification
    follow_up = llm_server.requests[1]["messages"]  # type: ignore[index]
    contents = [m.get("content") for m in follow_up]
    assert "What's our revenue?" in contents and question in contents
    assert follow_up[-1]["role"] == "user" and llm.question_of(follow_up[-1]["content"]) == "shipped only"
    assert answered.kind is ReplyKind.ANSWER and answered.sql == (sql,)
    assert answered.table is not None and answered.table.rows == (("2092.50",),)


async def test_a_prose_question_without_any_tool_use_is_a_clarification(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.text("Do you mean orders or order lines?"), llm.text("Do you mean orders or order lines?"))
    for enabled, kind in ((True, ReplyKind.INFO), (False, ReplyKind.ANSWER)):
        agent = build_agent(settings_with(fresh_db, llm_server.base_url, clarifying_questions=enabled))
        try:
            reply = await final_reply(agent, message("how many items?"))
        finally:
            await agent.aclose()
        assert reply.kind is kind and reply.text.startswith("Do you mean orders or order lines?")


async def test_an_answer_in_prose_with_no_sql_is_flagged_as_unchecked(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.text("You have about 1,200 orders."), llm.text("Hello! Ask me about the shop data."),
                      llm.text("You have about 1,200 orders."))
    agent = build_agent(settings_with(fresh_db, llm_server.base_url, grounded_answers=False))  # else withheld
    try:
        invented = await final_reply(agent, message("how many orders?"))
        greeting = await final_reply(agent, message("hi"))
    finally:
        await agent.aclose()
    assert invented.kind is ReplyKind.ANSWER and invented.sql == ()
    assert invented.text == f"You have about 1,200 orders.\n\n{UNVERIFIED_NOTE}"
    assert invented.notes.unverified
    assert greeting.text == "Hello! Ask me about the shop data." and not greeting.notes.unverified
    agent = build_agent(settings_with(fresh_db, llm_server.base_url, unverified_note=False, grounded_answers=False))
    try:
        plain = await final_reply(agent, message("how many orders?"))
    finally:
        await agent.aclose()
    assert plain.text == "You have about 1,200 orders."

"""👍/👎 and examples through the real Agent: scripted HTTP model, real Postgres, real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.wiring import build_agent
from core import ReplyKind
from core.config import Settings
from core.messages import Vote
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for
from tests.services import throwaway_database, throwaway_role

SHIPPED_SQL = "SELECT count(*) AS shipped FROM orders WHERE status = 'shipped'"
EXAMPLES_HEADER = "Examples of questions this team asked before"


@pytest.fixture
async def reader_role(fresh_db: str, pg_admin_dsn: str) -> AsyncIterator[str]:
    """A role that may read the shop tables and nothing else (the chat user's role)."""
    await load_shop(fresh_db)
    async with throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_t_reader",
                              grants="GRANT SELECT ON customers, orders TO {role}") as role:
        yield role


def feedback_settings(dsn: str, url: str, *, role: str | None = None, redis_url: str | None = None) -> Settings:
    extra = {"roles": {"slack:U1": role, "slack:U2": role}} if role else {}
    return settings_for(dsn, llm_url=url, redis_url=redis_url, **extra)


def system_prompt(server: llm.ScriptedLlmServer, index: int) -> str:
    return llm.prompt_text(server.requests[index])


async def test_thumbs_up_is_stored_by_the_login_role_and_becomes_an_example(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, reader_role: str
) -> None:
    llm_server.script(
        llm.tool_call("run_query", {"sql": SHIPPED_SQL}), llm.text("30 orders have shipped."),
        llm.text("ok"), llm.text("ok"),
    )
    agent = build_agent(feedback_settings(fresh_db, llm_server.base_url, role=reader_role))
    try:
        answer = await final_reply(agent, message("How many orders have shipped?"))
        assert answer.kind is ReplyKind.ANSWER and answer.answer_id
        vote = await agent.feedback(answer_id=answer.answer_id, user="slack:U2", helpful=True)
        await final_reply(agent, message("how many orders shipped so far?"))
        await final_reply(agent, message("list customers from France"))
    finally:
        await agent.aclose()

    assert vote.kind is ReplyKind.INFO and "👍 recorded" in vote.text and vote.vote.helpful
    conn = await asyncpg.connect(fresh_db)
    try:
        row = await conn.fetchrow("SELECT * FROM pgbot.feedback")
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'pgbot.feedback'::regclass"
        )
        reader_may_read = await conn.fetchval("SELECT has_table_privilege($1, 'pgbot.feedback', 'SELECT')", reader_role)
        login = await conn.fetchval("SELECT current_user")
    finally:
        await conn.close()
    assert (row["question"], row["sql"], row["helpful"]) == ("How many orders have shipped?", SHIPPED_SQL, True)
    assert (row["voted_by"], row["asked_by"], row["database"]) == ("slack:U2", "slack:U1", "shop")
    assert owner == login and owner != reader_role and not reader_may_read
    similar, unrelated = system_prompt(llm_server, 2), system_prompt(llm_server, 3)
    assert EXAMPLES_HEADER in similar
    assert f"Q: How many orders have shipped?\nSQL: {SHIPPED_SQL}" in similar
    assert EXAMPLES_HEADER not in unrelated


async def test_examples_stay_in_their_own_database(
    fresh_db: str, pg_admin_dsn: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    async with throwaway_database(pg_admin_dsn, prefix="pgbot_test_other") as other:
        await load_shop(other)
        settings = settings_for(fresh_db, llm_url=llm_server.base_url, default=True)
        settings.databases["other"] = settings.databases["shop"].model_copy(update={"default": False})
        settings.databases["other"].dsn = type(settings.databases["other"].dsn)(other)
        llm_server.script(llm.tool_call("run_query", {"sql": SHIPPED_SQL}), llm.text("30."),
                          llm.text("ok"), llm.text("ok"))
        agent = build_agent(settings)
        try:
            answer = await final_reply(agent, message("How many orders have shipped?"))
            assert answer.answer_id is not None
            await agent.feedback(answer_id=answer.answer_id, user="slack:U1", helpful=True)
            thread = "other-db-thread"
            await final_reply(agent, message("/db other", thread=thread))
            await final_reply(agent, message("How many orders have shipped?", thread=thread))
            await final_reply(agent, message("How many orders have shipped?"))
        finally:
            await agent.aclose()
    assert EXAMPLES_HEADER not in system_prompt(llm_server, 2)  # the other database: no votes there
    assert EXAMPLES_HEADER in system_prompt(llm_server, 3)


async def test_good_and_bad_commands_vote_on_the_threads_last_answer(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.tool_call("run_query", {"sql": SHIPPED_SQL}), llm.text("30 shipped."),
                      llm.text("ok"), llm.text("ok"))
    agent = build_agent(feedback_settings(fresh_db, llm_server.base_url))
    thread = "vote-thread"
    try:
        nothing = await final_reply(agent, message("/good", thread=thread))
        await final_reply(agent, message("How many orders have shipped?", thread=thread))
        good = await final_reply(agent, message("/good", thread=thread))
        await final_reply(agent, message("how many orders shipped?"))
        bad = await final_reply(agent, message("/bad", thread=thread))  # the same voter changes their mind
        await final_reply(agent, message("how many orders shipped?"))
    finally:
        await agent.aclose()
    assert nothing.kind is ReplyKind.INFO and "no answer in this thread" in nothing.text
    assert good.kind is ReplyKind.INFO and good.vote.helpful
    assert bad.kind is ReplyKind.INFO and not bad.vote.helpful and "will not be used" in bad.text
    assert EXAMPLES_HEADER in system_prompt(llm_server, 2)
    assert EXAMPLES_HEADER not in system_prompt(llm_server, 3)
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetch("SELECT helpful, voted_by FROM pgbot.feedback") == [(False, "slack:U1")]
    finally:
        await conn.close()


async def test_unknown_answers_and_users_without_access_leave_no_vote(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, reader_role: str
) -> None:
    llm_server.script(llm.tool_call("run_query", {"sql": SHIPPED_SQL}), llm.text("30 shipped."))
    agent = build_agent(feedback_settings(fresh_db, llm_server.base_url, role=reader_role))
    try:
        answer = await final_reply(agent, message("How many orders have shipped?"))
        unknown = await agent.feedback(answer_id="no-such-answer", user="slack:U1", helpful=True)
        stranger = await agent.feedback(answer_id=str(answer.answer_id), user="discord:999", helpful=True)
    finally:
        await agent.aclose()
    assert unknown.kind is ReplyKind.INFO and "no longer remembers" in unknown.text
    assert stranger.kind is ReplyKind.ERROR and "not mapped to a database role" in stranger.text
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT to_regclass('pgbot.feedback')") is None  # nothing stored at all
    finally:
        await conn.close()


async def test_a_vote_reaches_any_replica_through_redis(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, redis_url: str
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.tool_call("run_query", {"sql": SHIPPED_SQL}), llm.text("30 shipped."))
    settings = feedback_settings(fresh_db, llm_server.base_url, redis_url=redis_url)
    first, second = build_agent(settings), build_agent(settings)
    try:
        answer = await final_reply(first, message("How many orders have shipped?"))
        vote = await second.feedback(answer_id=str(answer.answer_id), user="slack:U7", helpful=True)
    finally:
        await first.aclose()
        await second.aclose()
    assert vote.kind is ReplyKind.INFO and vote.vote == Vote(answer_id=answer.answer_id, helpful=True)
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT sql FROM pgbot.feedback WHERE voted_by = 'slack:U7'") == SHIPPED_SQL
    finally:
        await conn.close()


async def test_examples_naming_tables_a_role_cannot_read_stay_out_of_its_prompt(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, reader_role: str
) -> None:
    """The 👍 pair is about supplier_costs (the reader's role has no grant there): a reader asking a similar
    question must not see that SQL; the user whose role may read it does."""
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE supplier_costs (id int PRIMARY KEY, cost numeric NOT NULL);"
                           "INSERT INTO supplier_costs SELECT g, g * 10 FROM generate_series(1, 5) g")
    finally:
        await conn.close()
    items_sql = "SELECT count(*) AS dear FROM supplier_costs WHERE cost > 20"
    llm_server.script(llm.tool_call("run_query", {"sql": items_sql}), llm.text("12."), llm.text("ok"),
                      llm.text("ok"))
    settings = settings_for(fresh_db, llm_url=llm_server.base_url,
                            roles={"slack:U1": reader_role, "slack:UADMIN": "postgres"})
    agent = build_agent(settings)
    try:
        answer = await final_reply(agent, message("How many supplier costs are above twenty?", user="UADMIN"))
        assert answer.kind is ReplyKind.ANSWER and answer.answer_id, answer.text
        await agent.feedback(answer_id=answer.answer_id, user="slack:UADMIN", helpful=True)
        await final_reply(agent, message("how many supplier costs are above twenty?", user="U1"))
        await final_reply(agent, message("how many supplier costs are above twenty?", user="UADMIN"))
    finally:
        await agent.aclose()
    assert EXAMPLES_HEADER not in system_prompt(llm_server, 2)
    assert items_sql in system_prompt(llm_server, 3)


def test_only_reads_compares_names_as_the_guard_spells_them() -> None:
    from core.prompt.catalog_cache import readable_names
    from core.prompt.examples import only_reads

    readable = readable_names([("public", "orders"), ("sales", "Order Lines")])
    assert only_reads("SELECT * FROM orders o JOIN public.orders p USING (id)", readable)
    assert only_reads('SELECT * FROM sales."Order Lines"', readable)
    assert only_reads("WITH x AS (SELECT 1) SELECT * FROM x, orders", readable)  # a CTE is not a table
    assert not only_reads("SELECT * FROM orders JOIN secrets USING (id)", readable)
    assert not only_reads("SELECT * FROM", readable)  # unparseable: never shown

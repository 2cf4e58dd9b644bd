"""Diagnostics against the real server: index advice (HypoPG and fallback), health, EXPLAIN safety."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from core.diagnostics.explain import explain
from core.diagnostics.findings import Severity
from core.diagnostics.health import health_check
from core.diagnostics.indexes import advise
from core.errors import GuardError
from core.sqlguard import SqlGuard
from tests.integration.diagnostics_env import SLOW_QUERY, big_db_fixture, database, hypopg_available, seed  # noqa: F401

GUARD = SqlGuard()


async def test_index_advice_with_hypopg_measures_the_right_index(fresh_db: str) -> None:
    if not await hypopg_available(fresh_db):
        pytest.skip("HypoPG is not installed on this server (Debian: apt-get install postgresql-15-hypopg)")
    await seed(fresh_db, "CREATE EXTENSION hypopg")
    db = database(fresh_db)
    try:
        advice = await advise(db, GUARD, SLOW_QUERY, role=None)
        assert advice.method == "hypopg"
        best = advice.recommended[0]
        assert best.candidate.columns[0] == "customer_id" and best.candidate.table == "public.orders_big"
        assert best.used and best.drop(advice.cost_before) > 0.9, advice.render()
        text = advice.render()
        assert "HypoPG" in text and 'CREATE INDEX CONCURRENTLY ON "public"."orders_big" ("customer_id"' in text
        assert "→" in text and "Nothing was built" in text
        # The existing unused and duplicate indexes of that table are reported with the advice.
        assert "orders_big_status_never_used" in text and "orders_big_created_a, public.orders_big_created_b" in text
        # Hypothetical indexes live in the session: none may be left on the pooled connection.
        assert await db.run(lambda c: c.fetchval("SELECT count(*) FROM hypopg_list_indexes"), role=None,
                            read_only=True) == 0
        assert await db.run(lambda c: c.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = 'orders_big' "
                                                 "AND indexdef LIKE '%customer_id%'"), role=None, read_only=True) == 0
    finally:
        await db.aclose()


async def test_index_advice_without_hypopg_estimates_and_says_so(big_db: str) -> None:
    db = database(big_db)
    try:
        advice = await advise(db, GUARD, SLOW_QUERY, role=None)
    finally:
        await db.aclose()
    assert advice.method == "estimate"
    best = advice.recommended[0]
    assert best.candidate.columns[0] == "customer_id" and best.drop(advice.cost_before) > 0.5, advice.render()
    text = advice.render()
    assert "HypoPG is not installed" in text and "estimates" in text
    # created_at already has an index: a single-column candidate on it is not proposed again.
    assert all(m.candidate.columns != ("created_at",) for m in advice.measured)


async def test_index_advice_refuses_what_it_cannot_plan(big_db: str) -> None:
    db = database(big_db)
    try:
        with pytest.raises(GuardError, match="cannot plan"):
            await advise(db, GUARD, "VACUUM orders_big", role=None)
        with pytest.raises(GuardError):
            await advise(db, GUARD, "SELECT 1; SELECT 2", role=None)
    finally:
        await db.aclose()


async def test_queries_with_placeholders_get_generic_plans(big_db: str) -> None:
    """pg_stat_statements records queries with $1 …: advice and EXPLAIN still work, on the generic plan."""
    db = database(big_db)
    try:
        sql = "SELECT id FROM orders_big WHERE customer_id = $1 AND created_at > $2"
        advice = await advise(db, GUARD, sql, role=None)
        assert advice.recommended[0].candidate.columns[0] == "customer_id", advice.render()
        report = await explain(db, GUARD, sql, role=None, analyze=True)
        assert not report.plan.analyzed and report.refused_analyze is not None
        assert "generic plan" in report.render() and "public.orders_big" in report.render()
        prepared = await db.run(lambda c: c.fetchval("SELECT count(*) FROM pg_prepared_statements "
                                                     "WHERE name LIKE 'pgbot_generic_%'"), role=None, read_only=True)
        assert prepared == 0
    finally:
        await db.aclose()


async def test_explain_analyze_of_a_delete_is_refused_and_nothing_is_deleted(big_db: str) -> None:
    db = database(big_db)
    try:
        report = await explain(db, GUARD, "DELETE FROM orders_big WHERE customer_id < 10000", role=None, analyze=True)
        assert report.refused_analyze is not None and "refuses" in report.refused_analyze
        assert not report.plan.analyzed
        text = report.render()
        assert text.startswith("EXPLAIN on 'shop':") and "plain EXPLAIN instead" in text and "Not executed" in text
        # A data-modifying CTE is a change too.
        cte = await explain(db, GUARD, "WITH d AS (DELETE FROM orders_big RETURNING id) SELECT count(*) FROM d",
                            role=None, analyze=True)
        assert cte.refused_analyze is not None
        count = await db.run(lambda c: c.fetchval("SELECT count(*) FROM orders_big"), role=None, read_only=True)
        assert count == 200_000
    finally:
        await db.aclose()


async def test_explain_analyze_of_a_read_names_the_seq_scan_on_the_large_table(big_db: str) -> None:
    db = database(big_db)
    try:
        report = await explain(db, GUARD, SLOW_QUERY, role=None, analyze=True)
    finally:
        await db.aclose()
    assert report.plan.analyzed and report.plan.execution_ms is not None
    scans = [f for f in report.findings if f.check == "seq_scan_large_table"]
    assert len(scans) == 1 and scans[0].severity is Severity.WARNING
    assert "public.orders_big" in scans[0].what and "discard 199,990" in scans[0].what
    text = report.render()
    assert "returned 10 rows" in text and "index" in text and "Why it matters" in text


async def test_health_finds_a_never_used_index_and_a_blocking_session(big_db: str) -> None:
    holder = await asyncpg.connect(big_db)
    waiter = await asyncpg.connect(big_db)
    waiting: asyncio.Task[str] | None = None
    db = database(big_db)
    try:
        holder_pid, waiter_pid = await holder.fetchval("SELECT pg_backend_pid()"), await waiter.fetchval(
            "SELECT pg_backend_pid()")
        await holder.execute("BEGIN; UPDATE orders_big SET status = 'held' WHERE id = 1")
        waiting = asyncio.ensure_future(waiter.execute("UPDATE orders_big SET status = 'waiting' WHERE id = 1"))

        async def until_blocked() -> None:
            blocked = "SELECT cardinality(pg_blocking_pids($1)) > 0"
            while not await holder.fetchval(blocked, waiter_pid):  # noqa: ASYNC110 - polls the server
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until_blocked(), timeout=10)
        report = await health_check(db, role=None)
    finally:
        await holder.execute("ROLLBACK")
        if waiting is not None:
            await waiting
        await holder.close()
        await waiter.close()
        await db.aclose()
    blocking = [f for f in report.findings if f.check == "blocking"]
    assert len(blocking) == 1 and blocking[0].severity is Severity.CRITICAL
    assert f"Session {holder_pid}" in blocking[0].what and "blocks 1 session" in blocking[0].what
    assert any(f"pid {waiter_pid}" in d and "UPDATE orders_big" in d for d in blocking[0].details)
    assert f"pg_terminate_backend({holder_pid})" in blocking[0].action
    unused = next(f for f in report.findings if f.check == "unused_index")
    assert any("orders_big_status_never_used" in d for d in unused.details)
    assert any(f.check == "duplicate_index" and f.severity is Severity.WARNING for f in report.findings)
    text = report.render()
    assert "CRITICAL: Session" in text and "Why it matters" in text and "What to do" in text
    # The shared server has no pg_stat_statements: the check says how to enable it.
    assert "shared_preload_libraries" in text and "CREATE EXTENSION pg_stat_statements" in text
    assert {"blocking", "unused_index", "duplicate_index"} <= report.checks()


async def test_health_runs_every_check_under_an_unprivileged_role(big_db: str, pg_admin_dsn: str) -> None:
    import uuid

    role = f"pgbot_t_plain_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f'CREATE ROLE "{role}" NOLOGIN; GRANT "{role}" TO CURRENT_USER')
    db = database(big_db)
    try:
        report = await health_check(db, role=role)
        assert report.render().startswith("Health of 'shop' (PostgreSQL")
        assert any(f.check == "unused_index" for f in report.findings)
        assert not {"check_failed", "not_visible"} & {f.check for f in report.findings}, report.render()
    finally:
        await db.aclose()
        conn = await asyncpg.connect(big_db)
        await conn.execute(f'DROP OWNED BY "{role}"')
        await conn.close()
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()


async def test_slash_commands_need_no_model(big_db: str) -> None:
    from bot.wiring import build_agent
    from core import ReplyKind
    from tests.helpers import final_reply, message, settings_for

    agent = build_agent(settings_for(big_db), use_llm=False)
    try:
        health = await final_reply(agent, message("/health"))
        assert health.kind is ReplyKind.RESULT and health.text.startswith("Health of 'shop'")
        explained = await final_reply(agent, message("/explain DELETE FROM orders_big"))
        assert explained.kind is ReplyKind.RESULT and "pgbot refuses it" in explained.text
        assert explained.sql == ("EXPLAIN (VERBOSE, FORMAT JSON) DELETE FROM orders_big",)
        advice = await final_reply(agent, message("/indexes " + SLOW_QUERY))
        assert advice.kind is ReplyKind.RESULT and '("customer_id")' in advice.text
        missing = await final_reply(agent, message("/indexes"))
        assert missing.kind is ReplyKind.ERROR and "pg_stat_statements is not installed" in missing.text
        usage = await final_reply(agent, message("/explain"))
        assert usage.kind is ReplyKind.ERROR and "Usage: /explain" in usage.text
    finally:
        await agent.aclose()
    assert await count_rows(big_db) == 200_000


async def count_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders_big"))
    finally:
        await conn.close()

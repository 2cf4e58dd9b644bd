"""Diagnostics during an incident: a second session holds (or queues for) ACCESS EXCLUSIVE on a table.

Health, index advice (with and without HypoPG), EXPLAIN and the backup size estimate must name the lock,
keep every other finding, raise nothing, and answer without waiting on the lock: each is timed against the
database's ``lock_timeout``, which one lock wait would exceed.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from core.db.postgres import PgDatabase
from core.diagnostics.checks import LockView, run_isolated
from core.diagnostics.explain import explain, relation_names
from core.diagnostics.findings import Finding, Severity
from core.diagnostics.health import HealthReport, health_check
from core.diagnostics.index_catalog import unused_and_duplicate
from core.diagnostics.indexes import advise
from core.diagnostics.locks import Locks
from core.errors import QueryTimeoutError
from core.sqlguard import SqlGuard
from tests.helpers import settings_for
from tests.integration.diagnostics_env import (
    SEED_SQL,
    SLOW_QUERY,
    access_exclusive,
    hypopg_available,
    queued_access_exclusive,
)
from tests.services import throwaway_database

GUARD = SqlGuard()
LOCK_TIMEOUT_MS = 5000  # one wait on the lock would take this long: every check must answer sooner
# A second table with an unused index of its own, and a view over the locked table.
EXTRA_SQL = """
CREATE TABLE events (id int PRIMARY KEY, kind text NOT NULL);
INSERT INTO events SELECT g, 'k' || (g % 50) FROM generate_series(1, 5000) g;
CREATE INDEX events_kind_unused ON events (kind);
ANALYZE events;
CREATE VIEW recent_orders AS SELECT * FROM orders_big WHERE created_at > '2026-03-01';
"""


async def _seeded(admin_dsn: str, *extensions: str) -> AsyncIterator[str]:
    async with throwaway_database(admin_dsn, prefix="pgbot_lockdiag") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            for extension in extensions:
                await conn.execute(f"CREATE EXTENSION {extension}")
            await conn.execute(SEED_SQL + EXTRA_SQL)
        finally:
            await conn.close()
        yield dsn


@pytest.fixture(scope="module")
async def lock_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    """Seeded, without HypoPG; tests only read (the locks they take end with their sessions)."""
    async for dsn in _seeded(pg_admin_dsn):
        yield dsn


@pytest.fixture(scope="module")
async def hypo_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    if not await hypopg_available(pg_admin_dsn):
        pytest.skip("HypoPG is not installed on this server (Debian: apt-get install postgresql-15-hypopg)")
    async for dsn in _seeded(pg_admin_dsn, "hypopg"):
        yield dsn


def database(dsn: str, *, lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> PgDatabase:
    return PgDatabase("shop", settings_for(dsn, lock_timeout_ms=lock_timeout_ms).databases["shop"])


def by_check(report: HealthReport, check: str) -> Finding:
    found = [f for f in report.findings if f.check == check]
    assert len(found) == 1, report.render()
    return found[0]


async def test_health_names_a_held_lock_and_keeps_every_other_finding(lock_db: str) -> None:
    db = database(lock_db)
    try:
        baseline = await health_check(db, role=None)
        async with access_exclusive(lock_db, "orders_big") as pid:
            started = time.monotonic()
            report = await health_check(db, role=None)
            elapsed = time.monotonic() - started
    finally:
        await db.aclose()
    assert elapsed < LOCK_TIMEOUT_MS / 1000, f"waited on the lock: {elapsed:.1f} s"
    assert not {"check_failed", "not_visible"} & {f.check for f in report.findings}, report.render()
    # Every check of the unlocked run is still there, plus the lock.
    assert {f.check for f in baseline.findings} <= {f.check for f in report.findings}
    assert by_check(baseline, "locked_relation").severity is Severity.OK
    locked = by_check(report, "locked_relation")
    assert locked.severity is Severity.WARNING
    assert len(locked.details) == 1 and re.fullmatch(
        rf"public\.orders_big is locked by pid {pid} \(ACCESS EXCLUSIVE, \d+ s\): sizes are estimates",
        locked.details[0]), locked.details
    # The unused and duplicate indexes of the locked table are still reported, their definitions from the catalog;
    # the other table's index keeps its exact definition.
    unused = by_check(report, "unused_index")
    assert any("public.orders_big_status_never_used on public.orders_big" in d and "USING btree (status)" in d
               and "[from the catalog: locked]" in d for d in unused.details), unused.details
    assert any(d.startswith("public.events_kind_unused on public.events") and "locked" not in d
               for d in unused.details), unused.details
    duplicate = by_check(report, "duplicate_index")
    assert duplicate.details == by_check(baseline, "duplicate_index").details
    text = report.render()
    assert f"public.orders_big is locked by pid {pid} (ACCESS EXCLUSIVE" in text and "canceling statement" not in text


async def test_health_does_not_queue_behind_a_waiting_access_exclusive_request(lock_db: str) -> None:
    db = database(lock_db)
    try:
        async with queued_access_exclusive(lock_db, "orders_big") as pid:
            started = time.monotonic()
            report = await health_check(db, role=None)
            elapsed = time.monotonic() - started
    finally:
        await db.aclose()
    assert elapsed < LOCK_TIMEOUT_MS / 1000, f"queued behind the lock request: {elapsed:.1f} s"
    assert not {"check_failed", "not_visible"} & {f.check for f in report.findings}, report.render()
    locked = by_check(report, "locked_relation")
    assert any(d.startswith(f"public.orders_big has an ACCESS EXCLUSIVE lock queued by pid {pid} (waiting")
               for d in locked.details), locked.details
    assert any("orders_big_status_never_used" in d for d in by_check(report, "unused_index").details)
    # The waiting LOCK TABLE is itself a blocked session, so the blocking check names its holder.
    assert any(f"pid {pid}" in d for d in by_check(report, "blocking").details)


async def test_an_unprivileged_role_sees_the_lock_without_its_age(lock_db: str, pg_admin_dsn: str) -> None:
    """Without pg_monitor another user's transaction start is hidden: the lock is named, its age left out."""
    import uuid

    role = f"pgbot_t_plain_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f'CREATE ROLE "{role}" NOLOGIN; GRANT "{role}" TO CURRENT_USER')
    db = database(lock_db)
    try:
        async with access_exclusive(lock_db, "orders_big") as pid:
            started = time.monotonic()
            report = await health_check(db, role=role)
            advice = await advise(db, GUARD, SLOW_QUERY, role=role)
            elapsed = time.monotonic() - started
    finally:
        await db.aclose()
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()
    assert elapsed < LOCK_TIMEOUT_MS / 1000, elapsed
    assert not {"check_failed", "not_visible"} & {f.check for f in report.findings}, report.render()
    assert by_check(report, "locked_relation").details == (
        f"public.orders_big is locked by pid {pid} (ACCESS EXCLUSIVE): sizes are estimates",)
    assert advice.blocked == [f"public.orders_big is locked by pid {pid} (ACCESS EXCLUSIVE)"]


async def test_a_lock_taken_after_the_look_costs_one_lock_timeout_and_is_named(lock_db: str) -> None:
    """The race: the locks were read before the table was locked. The check meets the lock once, reads the
    locks again, and answers from the catalog instead of failing."""
    db = database(lock_db, lock_timeout_ms=300)
    try:
        async with access_exclusive(lock_db, "orders_big"):
            stale = LockView(Locks())

            async def work(conn: asyncpg.Connection) -> list[Finding]:
                return await unused_and_duplicate(conn, view=stale)

            started = time.monotonic()
            findings = await db.run(work, role=None, read_only=True, rollback=True)
            elapsed = time.monotonic() - started
    finally:
        await db.aclose()
    assert elapsed < 0.3 * 2 + 1.0, elapsed  # the unused check waits once; the duplicate one not at all
    assert [f.check for f in findings] == ["unused_index", "duplicate_index"]
    assert any("[from the catalog: locked]" in d for d in findings[0].details)
    assert stale.locks and "public.orders_big" in stale.locks.reported()[0].relation


async def test_a_failing_check_is_its_own_finding_and_the_next_one_still_runs(lock_db: str) -> None:
    db = database(lock_db, lock_timeout_ms=200)

    try:
        async with access_exclusive(lock_db, "orders_big") as pid:

            async def work(conn: asyncpg.Connection) -> list[Finding]:
                view = await LockView.read(conn)

                async def divide(_: Locks) -> list[Finding]:
                    await conn.fetchval("SELECT 1 / 0")
                    return []

                async def stubborn(_: Locks) -> list[Finding]:  # ignores the locks it is given: waits each time
                    await conn.fetchval("SELECT pg_relation_size('orders_big')")
                    return []

                async def fine(_: Locks) -> list[Finding]:
                    return [Finding(Severity.OK, "fine", str(await conn.fetchval("SELECT count(*) FROM events")))]

                return [*await run_isolated(conn, "divide", divide, view),
                        *await run_isolated(conn, "stubborn", stubborn, view),
                        *await run_isolated(conn, "fine", fine, view)]

            started = time.monotonic()
            findings = await db.run(work, role=None, read_only=True, rollback=True)
            elapsed = time.monotonic() - started
    finally:
        await db.aclose()
    assert [f.check for f in findings] == ["check_failed", "check_failed", "fine"]
    assert findings[0].what == "The divide check failed: division by zero"
    assert findings[1].what.startswith("The stubborn check could not run: canceling statement due to lock timeout. "
                                       f"Locked now: public.orders_big is locked by pid {pid} (ACCESS EXCLUSIVE")
    assert findings[2].what == "5000"
    assert elapsed < 2 * 0.2 + 1.0, elapsed  # two lock waits at most, then it gives up


async def test_index_advice_on_a_locked_table_without_hypopg(lock_db: str) -> None:
    db = database(lock_db)
    try:
        async with access_exclusive(lock_db, "orders_big") as pid:
            started = time.monotonic()
            advice = await advise(db, GUARD, SLOW_QUERY, role=None)
            elapsed = time.monotonic() - started
            # A query on a table nobody locked is measured as usual meanwhile.
            other = await advise(db, GUARD, "SELECT id FROM events WHERE kind = 'k7'", role=None)
    finally:
        await db.aclose()
    assert elapsed < LOCK_TIMEOUT_MS / 1000, elapsed
    assert advice.method == "estimate" and advice.measured == [] and advice.recommended == []
    assert len(advice.blocked) == 1
    assert re.fullmatch(rf"public\.orders_big is locked by pid {pid} \(ACCESS EXCLUSIVE, \d+ s\)", advice.blocked[0])
    assert advice.unmeasured[0].columns == ("customer_id",)
    text = advice.render()
    assert "cannot be planned right now" in text and f"locked by pid {pid}" in text
    assert "Candidates to measure then: (customer_id) on public.orders_big" in text
    # The existing-index findings of the locked table still appear.
    assert "orders_big_status_never_used" in text and "orders_big_created_a, public.orders_big_created_b" in text
    assert other.blocked == [] and other.cost_before > 0 and "events_kind_unused" in other.render()


async def test_index_advice_on_a_locked_table_with_hypopg(hypo_db: str) -> None:
    db = database(hypo_db)
    try:
        async with queued_access_exclusive(hypo_db, "orders_big") as pid:
            started = time.monotonic()
            advice = await advise(db, GUARD, SLOW_QUERY, role=None)
            elapsed = time.monotonic() - started
        async with access_exclusive(hypo_db, "events"):
            measured = await advise(db, GUARD, SLOW_QUERY, role=None)  # orders_big is free again
        left = await db.run(lambda c: c.fetchval("SELECT count(*) FROM hypopg_list_indexes"), role=None,
                            read_only=True)
    finally:
        await db.aclose()
    assert elapsed < LOCK_TIMEOUT_MS / 1000, elapsed
    assert advice.method == "hypopg" and advice.measured == []
    assert advice.blocked and advice.blocked[0].startswith(f"public.orders_big has an ACCESS EXCLUSIVE lock "
                                                           f"queued by pid {pid}")
    assert "orders_big_status_never_used" in advice.render()
    assert measured.blocked == [] and measured.recommended[0].candidate.columns[0] == "customer_id"
    assert left == 0


async def test_explain_on_a_locked_table_reports_the_lock(lock_db: str) -> None:
    db = database(lock_db, lock_timeout_ms=500)
    try:
        await explain(db, GUARD, "SELECT count(*) FROM events", role=None, analyze=False)  # the pool is up
        async with access_exclusive(lock_db, "orders_big") as pid:
            started = time.monotonic()
            with pytest.raises(QueryTimeoutError, match=rf"public\.orders_big is locked by pid {pid}") as direct:
                await explain(db, GUARD, SLOW_QUERY, role=None, analyze=True)
            assert time.monotonic() - started < 0.5  # seen in pg_locks: no wait at all
            assert "cannot plan this query right now" in direct.value.user_message
            # Through a view the table is not named, so planning meets the lock: one lock_timeout, then named.
            started = time.monotonic()
            with pytest.raises(QueryTimeoutError, match=rf"locked by pid {pid}"):
                await explain(db, GUARD, "SELECT * FROM recent_orders WHERE customer_id = 1", role=None,
                              analyze=False)
            assert time.monotonic() - started < 0.5 + 1.0
            advice = await advise(db, GUARD, "SELECT * FROM recent_orders WHERE customer_id = 1", role=None)
            assert advice.blocked[0].startswith(f"public.orders_big is locked by pid {pid} (ACCESS EXCLUSIVE")
            # Other tables are explained as usual.
            report = await explain(db, GUARD, "SELECT count(*) FROM events", role=None, analyze=True)
            assert report.plan.analyzed
    finally:
        await db.aclose()


def test_relation_names_cover_every_named_relation_but_ctes() -> None:
    sql = ('WITH recent AS (SELECT * FROM orders_big) SELECT * FROM recent JOIN public."Odd ""Name""" o '
           "ON true WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = o.id)")
    assert relation_names(sql) == ['"events"', '"orders_big"', '"public"."Odd ""Name"""']
    assert relation_names("INSERT INTO audit.log SELECT * FROM other.db.t") == ['"audit"."log"']


async def test_slash_commands_during_a_lock(lock_db: str) -> None:
    from bot.wiring import build_agent
    from core import ReplyKind
    from tests.helpers import final_reply, message

    agent = build_agent(settings_for(lock_db, lock_timeout_ms=LOCK_TIMEOUT_MS), use_llm=False)
    try:
        async with access_exclusive(lock_db, "orders_big") as pid:
            started = time.monotonic()
            health = await final_reply(agent, message("/health"))
            advice = await final_reply(agent, message("/indexes " + SLOW_QUERY))
            explained = await final_reply(agent, message("/explain " + SLOW_QUERY))
            assert time.monotonic() - started < LOCK_TIMEOUT_MS / 1000
    finally:
        await agent.aclose()
    assert health.kind is ReplyKind.RESULT and f"public.orders_big is locked by pid {pid}" in health.text
    assert "orders_big_status_never_used" in health.text
    assert advice.kind is ReplyKind.RESULT and "cannot be planned right now" in advice.text
    assert explained.kind is ReplyKind.ERROR and f"locked by pid {pid}" in explained.text


async def test_backup_size_estimate_names_the_locked_table(fresh_db: str, tmp_path: Path) -> None:
    from bot.wiring import build_agent
    from core.backups.actions import propose_backup_action
    from core.backups.inspect import database_facts
    from tests.integration.backup_env import backup_settings, seed

    await seed(fresh_db)
    agent = build_agent(backup_settings(fresh_db, tmp_path, lock_wait_timeout_ms=300), use_llm=False)
    db = agent.databases.get("shop")
    try:
        exact = await database_facts(db)
        async with access_exclusive(fresh_db, "orders") as pid:
            started = time.monotonic()
            facts = await database_facts(db)
            _, text = await propose_backup_action(db, settings=agent.settings, thread_key="t",
                                                  requested_by="cli:test", role=None)
            elapsed = time.monotonic() - started
    finally:
        await agent.aclose()
    assert elapsed < 3.0, elapsed  # the default lock_timeout; no wait at all in fact:
    estimated = {t.qualified for t in facts.tables if t.estimated}
    assert estimated == {"public.orders"}  # (after a lock wait every size would be an estimate)
    # Every other table keeps its exact size.
    assert {t.qualified: t.bytes for t in facts.tables if not t.estimated} == {
        t.qualified: t.bytes for t in exact.tables if t.qualified != "public.orders"}
    assert [lock.pid for lock in facts.locked] == [pid]
    assert f"Right now public.orders is locked by pid {pid} (ACCESS EXCLUSIVE" in text
    assert "its size is an estimate, and pg_dump waits up to 0.3 s" in text

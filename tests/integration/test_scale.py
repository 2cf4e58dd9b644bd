"""5,000 tables and a million-row result: introspection stays set-based and quick, the prompt stays within its
budget, and the event loop is never blocked for more than 100 ms during such a turn (asyncio debug mode's
slow-callback log and a heartbeat both watch it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.wiring import build_agent
from core import ReplyKind
from core.config import DatabaseSettings
from core.db.postgres import PgDatabase
from core.prompt.catalog_cache import CatalogCache, estimate_tokens
from core.prompt.schema_context import SchemaContext
from tests import llm_server as llm
from tests.helpers import final_reply, message, settings_for
from tests.services import throwaway_database

N_TABLES = 5000
SCHEMAS = ("sales", "hr", "finance", "ops", "Ünïcode Schema", "select", "legacy", "stage", "web", "iot")


def _batches() -> list[str]:
    batches: list[str] = [";".join(f'CREATE SCHEMA "{s}"' for s in SCHEMAS)]
    statements = []
    def qualified(i: int) -> str:
        return f'"{SCHEMAS[i % len(SCHEMAS)]}"."' + (f"entity_{i}" if i % 97 else f"Odd Table {i}") + '"'

    for i in range(N_TABLES):
        # Fixed-width columns only (no TOAST table each) and keys only where a foreign key needs one: the
        # catalog is what is under test, and this keeps creating 5,000 tables to a few seconds.
        key = " PRIMARY KEY" if i % 10 == 0 else ""
        cols = f"id int{key}, amount bigint, created_at timestamptz, status smallint, active bool"
        if i % 10 == 1:
            cols += f", parent_id int REFERENCES {qualified(i - 1)}(id)"
        statements.append(f"CREATE TABLE {qualified(i)} ({cols})")
        if i % 50 == 0:
            statements.append(f"COMMENT ON TABLE {qualified(i)} IS '{'very long comment ' * 3000}'")
        if len(statements) >= 800:
            batches.append(";".join(statements))
            statements = []
    batches.append(";".join(statements))
    batches.append("CREATE TABLE sales.invoice_totals (id int PRIMARY KEY, customer text, total numeric);"
                   "COMMENT ON TABLE sales.invoice_totals IS 'Invoice totals per customer'")
    return batches


@pytest.fixture(scope="module")
async def big_schema_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    """One database with 5,001 tables for this module (creating it takes a few seconds)."""
    async with throwaway_database(pg_admin_dsn, prefix="pgbot_test_big") as dsn:  # dropped even if the build fails
        conn = await asyncpg.connect(dsn)
        try:
            for batch in _batches():
                await conn.execute(batch)
        finally:
            await conn.close()
        yield dsn


async def test_5000_tables_introspect_quickly_and_the_prompt_stays_small(big_schema_db: str) -> None:
    db = PgDatabase("big", DatabaseSettings(dsn=big_schema_db))
    cache = CatalogCache()
    context = SchemaContext(cache=cache)
    try:
        started = time.perf_counter()
        text = await context.for_question(db, role=None, question="invoice totals per customer")
        cold = time.perf_counter() - started
        started = time.perf_counter()
        again = await context.for_question(db, role=None, question="status of entity_4321")
        warm = time.perf_counter() - started
    finally:
        await db.aclose()
    catalog = await cache.get(db, role=None)
    assert len(catalog.tables) == N_TABLES + 1
    assert cold < 5.0, cold  # a generous bound for CI; the bench reports the real figure
    assert warm < 0.2, warm
    assert cache.loads == 1
    assert text.startswith("Tables (names only")  # the catalog, the same for every question, comes first
    assert "Tables most relevant to this question:\nsales.invoice_totals(id int PK, customer text" in text
    assert "public" not in text
    assert '"Ünïcode Schema"' in text or '"select"' in text  # odd schema names listed, quoted
    for reply in (text, again):
        assert estimate_tokens(reply) <= DatabaseSettings(dsn="postgresql://x/a").schema_context_tokens
    assert "entity_4321(" in again


async def test_loop_never_blocked_over_100ms_during_a_big_turn(big_schema_db: str, llm_server) -> None:
    big_sql = ("SELECT g, repeat('x', 20000) AS wide, decode(repeat('ab', 50000), 'hex') AS blob "
               "FROM generate_series(1, 1000000) g")
    llm_server.script(llm.tool_call("run_query", {"sql": big_sql}), llm.text("Here they are."))
    agent = build_agent(settings_for(big_schema_db, llm_url=llm_server.base_url, max_rows=500))
    loop = asyncio.get_running_loop()
    slow: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "took" in record.getMessage() or "Executing" in record.getMessage():
                slow.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)
    was_debug, was_slow = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = 0.1
    lags: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    beat = asyncio.create_task(heartbeat())
    try:
        reply = await final_reply(agent, message("all the rows please"))  # cold: 5,001 tables introspected
    finally:
        stop.set()
        await beat
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_slow
        asyncio_log.removeHandler(handler)
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER, reply.text
    assert reply.table is not None and reply.table.row_count == 500 and reply.table.truncated
    assert all(len(str(cell)) < 600 for row in reply.table.rows for cell in row[1:])  # huge values cut for chat
    assert not slow, slow
    assert max(lags) < 0.1, max(lags)
    assert len(lags) > 10  # the heartbeat really ran during the turn

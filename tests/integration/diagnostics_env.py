"""A seeded database for the diagnostics tests: 200k orders, a selective unindexed filter, planted indexes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from core.db.postgres import PgDatabase
from tests.helpers import settings_for
from tests.services import throwaway_database

SEED_SQL = """
CREATE TABLE orders_big (id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
                         created_at timestamptz NOT NULL);
INSERT INTO orders_big
  SELECT g, g % 20000, (ARRAY['pending', 'shipped', 'paid'])[1 + g % 3], timestamptz '2026-01-01' + g * interval '1 min'
  FROM generate_series(1, 200000) g;
CREATE INDEX orders_big_status_never_used ON orders_big (status);
CREATE INDEX orders_big_created_a ON orders_big (created_at);
CREATE INDEX orders_big_created_b ON orders_big (created_at);
ANALYZE orders_big;
"""
SLOW_QUERY = "SELECT id, status FROM orders_big WHERE customer_id = 4242 ORDER BY created_at"


async def seed(dsn: str, *extra: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in extra:
            await conn.execute(statement)
        await conn.execute(SEED_SQL)
    finally:
        await conn.close()


def database(dsn: str) -> PgDatabase:
    return PgDatabase("shop", settings_for(dsn).databases["shop"])


async def hypopg_available(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'"))
    finally:
        await conn.close()


@pytest.fixture(scope="module", name="big_db")
async def big_db_fixture(pg_admin_dsn: str) -> AsyncIterator[str]:
    """One seeded database (no HypoPG) per test module: tests using it only read, or roll back."""
    async with throwaway_database(pg_admin_dsn, prefix="pgbot_diag") as dsn:
        await seed(dsn)
        yield dsn


async def _until(conn: asyncpg.Connection, sql: str, *args: object, timeout_s: float = 10.0) -> None:
    """Poll the server until ``sql`` is true (a condition, not a fixed sleep)."""

    async def poll() -> None:
        while not await conn.fetchval(sql, *args):  # noqa: ASYNC110 - polls the server
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout=timeout_s)


@asynccontextmanager
async def access_exclusive(dsn: str, table: str) -> AsyncIterator[int]:
    """A second session holding ``LOCK TABLE table IN ACCESS EXCLUSIVE MODE`` in an open transaction; its pid."""
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield int(await holder.fetchval("SELECT pg_backend_pid()"))
    finally:
        await holder.close()  # ends the transaction and its lock


@asynccontextmanager
async def queued_access_exclusive(dsn: str, table: str) -> AsyncIterator[int]:
    """An ACCESS EXCLUSIVE request queued behind a reader's open transaction (the ALTER TABLE stuck behind a
    long SELECT): every new reader of ``table`` queues behind it. Yields the waiting session's pid."""
    reader = await asyncpg.connect(dsn)
    waiter = await asyncpg.connect(dsn)
    waiting: asyncio.Task[str] | None = None
    try:
        await reader.execute(f"BEGIN; SELECT 1 FROM {table} LIMIT 1")
        pid = int(await waiter.fetchval("SELECT pg_backend_pid()"))
        waiting = asyncio.ensure_future(waiter.execute(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        await _until(reader, "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)", pid)
        yield pid
    finally:
        await reader.close()
        if waiting is not None:
            await waiting  # granted once the reader is gone
        await waiter.close()

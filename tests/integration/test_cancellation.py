"""A client that goes away mid-query: its task is cancelled, so the query is cancelled on the server, the
connection returns to the pool, and the thread's line and the concurrency slots are freed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from bot.wiring import build_agent
from core import ReplyKind
from core.agent.loop import Agent
from tests.helpers import final_reply, message, settings_for, wait_until


def _files(directory: Path) -> list[Path]:
    return list(directory.iterdir())


async def _active(admin: asyncpg.Connection, marker: str) -> int:
    count: int = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
        f"%{marker}%",
    )
    return count


async def _wait_for(admin: asyncpg.Connection, marker: str, *, present: bool, limit_s: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (await _active(admin, marker) > 0) != present:
        if loop.time() - started > limit_s:
            raise AssertionError(f"query {marker!r} {'never started' if present else 'still running'}")
        await asyncio.sleep(0.02)
    return loop.time() - started


async def _disconnect_mid_query(agent: Agent, dsn: str, text: str, marker: str) -> float:
    admin = await asyncpg.connect(dsn)
    try:
        consumer = asyncio.create_task(final_reply(agent, message(text, thread="t-cancel")))
        await _wait_for(admin, marker, present=True)
        consumer.cancel()  # what an adapter does when the client disconnects
        try:
            await consumer
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the consumer finished instead of being cancelled")
        return await _wait_for(admin, marker, present=False)
    finally:
        await admin.close()


async def test_cancelled_turn_cancels_the_server_query_and_frees_everything(fresh_db: str) -> None:
    agent = build_agent(settings_for(fresh_db, statement_timeout_ms=60_000))
    try:
        gone_after = await _disconnect_mid_query(agent, fresh_db, "/sql SELECT pg_sleep(30) AS marker_q1", "marker_q1")
        assert gone_after < 2.0  # cancelled on the server, not left to run 30 s
        pool = await agent.databases.get("shop").pool()
        await wait_until(lambda: pool.get_idle_size() == pool.get_size() >= 1,  # the connection came back
                         describe=lambda: (pool.get_idle_size(), pool.get_size()), within_s=5)
        assert agent.limiter.stats.running == 0 and agent.limiter.stats.waiting == 0
        after = await final_reply(agent, message("/sql SELECT 1 AS ok", thread="t-cancel"))  # same thread
        assert after.kind is ReplyKind.RESULT and after.table is not None and after.table.rows == ((1,),)
    finally:
        await agent.aclose()


async def test_cancelled_export_stops_copy_on_the_server_and_removes_the_partial_file(
    fresh_db: str, tmp_path: Path
) -> None:
    settings = settings_for(fresh_db, statement_timeout_ms=60_000)
    settings.limits.export_dir = tmp_path
    agent = build_agent(settings)
    try:
        sql = "/export SELECT g, pg_sleep(0.01) AS marker_x2 FROM generate_series(1, 5000) g"
        gone_after = await _disconnect_mid_query(agent, fresh_db, sql, "marker_x2")
        assert gone_after < 2.0
        await wait_until(lambda: _files(tmp_path) == [], describe=lambda: _files(tmp_path),  # no half-written
                         within_s=5)  # export left behind
        pool = await agent.databases.get("shop").pool()
        assert pool.get_idle_size() == pool.get_size()
    finally:
        await agent.aclose()

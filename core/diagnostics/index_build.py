"""Build an approved index with ``CREATE INDEX CONCURRENTLY``, reporting progress; clean up if it fails.

CONCURRENTLY cannot run in a transaction, keeps reads and writes going while it builds, and on failure leaves
an INVALID index behind that still slows writes: so a failed build drops it (also CONCURRENTLY) and says so.
Progress comes from ``pg_stat_progress_create_index`` read on a second connection while the build runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from core.approvals.executors import ExecutionContext, ExecutionOutcome, executor
from core.approvals.pending import PendingAction
from core.db.base import PostgresDatabase
from core.db.postgres import SQL_TAG, describe_connect_error, quote_ident, translate_pg_error
from core.errors import DatabaseError, DatabaseUnavailableError, QueryTimeoutError

log = structlog.get_logger(__name__)
OPERATION = "create_index"
POLL_S = 0.25
REPORT_EVERY_S = 3.0  # chat threads should not get a line every poll


@executor(OPERATION)
async def create_index(action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome:
    """Run the approved CREATE INDEX CONCURRENTLY (``action.sql`` exactly) as the requester's role."""
    db = ctx.database
    schema, name = action.params["schema"], action.params["name"]
    qualified = f"{quote_ident(schema)}.{quote_ident(name)}"
    started = time.perf_counter()
    pool = await db.pool()
    try:
        async with pool.acquire(timeout=db.settings.connect_timeout_s) as conn:
            pid: int = await conn.fetchval("SELECT pg_backend_pid()")
            # Approved builds may take long (change_timeout_ms); lock_timeout still bounds the waits.
            await conn.execute(f"SET statement_timeout = {int(db.change_limits.statement_timeout_ms)}; "
                               f"SET lock_timeout = {int(db.limits.lock_timeout_ms)}")
            try:
                if action.role:
                    await conn.execute(f"SET ROLE {quote_ident(action.role)}")
                build = asyncio.ensure_future(conn.execute(SQL_TAG + action.sql))
                try:
                    await _watch(db, pid, build, ctx.report)
                except Exception as exc:  # noqa: BLE001 - a failed progress post must not abandon the build
                    log.warning("index_progress_report_failed", error=type(exc).__name__)
                status: str = await build
            except asyncpg.PostgresError as exc:
                error = translate_pg_error(exc, database=db.name)
                cleanup = await _drop_if_invalid(conn, qualified)
                raise DatabaseError(f"{error.user_message} {cleanup}".strip()) from exc
            finally:
                await conn.execute("RESET ROLE; RESET statement_timeout; RESET lock_timeout")
    except (OSError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise DatabaseUnavailableError(f"Database '{db.name}' connection failed: {describe_connect_error(exc)}") \
            from exc
    size = await _index_size(db, qualified)
    return ExecutionOutcome(status=f"{status}: index {schema}.{name} built ({size})",
                            duration_ms=(time.perf_counter() - started) * 1000)


async def _watch(db: PostgresDatabase, pid: int, build: asyncio.Future[str],
                 report: Callable[[str], Awaitable[None]]) -> None:
    """Poll the build's progress from a second connection until it ends; report changes every few seconds."""
    monitor: asyncpg.Connection | None = None
    last_line, last_at = "", -REPORT_EVERY_S
    try:
        while not build.done():
            await asyncio.wait({build}, timeout=POLL_S)
            if build.done():
                break
            if monitor is None:
                monitor = await asyncpg.connect(db.settings.dsn.get_secret_value(),
                                                timeout=db.settings.connect_timeout_s)
            row = await monitor.fetchrow(
                "SELECT phase, blocks_total, blocks_done, tuples_total, tuples_done, lockers_total, lockers_done "
                "FROM pg_stat_progress_create_index WHERE pid = $1", pid)
            line = progress_line(row) if row is not None else ""
            now = time.monotonic()
            if line and line != last_line and now - last_at >= REPORT_EVERY_S:
                await report(line)
                last_line, last_at = line, now
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        # Progress is a courtesy: the build goes on without it.
        log.warning("index_progress_unavailable", error=describe_connect_error(exc))
        await asyncio.wait({build})
    finally:
        if monitor is not None:
            await monitor.close()


def progress_line(row: asyncpg.Record) -> str:
    """``building index: 45% (phase: building index: scanning table)``."""
    phase = str(row["phase"])
    for done, total in (("blocks_done", "blocks_total"), ("tuples_done", "tuples_total"),
                        ("lockers_done", "lockers_total")):
        if row[total]:
            return f"building index: {min(100, int(100 * row[done] / row[total]))}% (phase: {phase})"
    return f"building index (phase: {phase})"


async def _drop_if_invalid(conn: asyncpg.Connection, qualified: str) -> str:
    """After a failed build: drop the INVALID index it left, and say what happened."""
    try:
        await conn.execute("RESET ROLE")  # the failed build's role may not own what is left: try as the bot
        invalid = await conn.fetchval("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                                      qualified)
        if invalid is None:
            return "No index was left behind."
        if not invalid:
            return ""
        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified}")
    except asyncpg.PostgresError as exc:
        log.error("invalid_index_not_dropped", index=qualified, error=str(exc))
        return (f"The failed build left the INVALID index {qualified}, and dropping it failed ({exc}); "
                f"drop it with DROP INDEX CONCURRENTLY {qualified}.")
    return f"The INVALID index {qualified} the failed build left behind was dropped."


async def _index_size(db: PostgresDatabase, qualified: str) -> str:
    """The new index's size, under the database's lock_timeout: a session locking it already must not hold up
    the outcome of a build that has finished."""

    async def work(conn: asyncpg.Connection) -> str | None:
        text: str | None = await conn.fetchval("SELECT pg_size_pretty(pg_relation_size(to_regclass($1)))", qualified)
        return text

    try:
        return await db.run(work, role=None, read_only=True) or "size unknown"
    except QueryTimeoutError:
        return "size unknown: the index is locked by another session"

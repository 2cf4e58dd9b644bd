"""One configured database: a lazily created asyncpg pool and the only code that runs SQL on it.

Every statement runs inside a transaction that starts with ``SET LOCAL statement_timeout``,
``SET LOCAL lock_timeout`` and ``SET LOCAL ROLE <mapped role>``, so Postgres itself enforces time limits and
grants. Reads run in a ``READ ONLY`` transaction and fetch through a server-side cursor, so the row cap is
applied in the database fetch and a million-row result never reaches Python memory.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

import asyncpg
import structlog

from core.config import DatabaseSettings
from core.errors import (
    BusyError,
    DatabaseError,
    DatabaseUnavailableError,
    PermissionDeniedError,
    QueryTimeoutError,
)
from core.messages import ResultTable, rows_to_table

log = structlog.get_logger(__name__)
T = TypeVar("T")
SQL_TAG = "/* pgbot */ "


@dataclass(frozen=True, slots=True)
class QueryLimits:
    statement_timeout_ms: int
    lock_timeout_ms: int
    max_rows: int
    max_cell_chars: int = 500
    label: str = "read"  # which limit this is, named in a timeout's message: read, change, export

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> QueryLimits:
        return cls(
            statement_timeout_ms=settings.statement_timeout_ms,
            lock_timeout_ms=settings.lock_timeout_ms,
            max_rows=settings.max_rows,
            max_cell_chars=settings.max_cell_chars,
        )


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows as Postgres returned them (capped), plus whether the cap cut any."""

    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]
    truncated: bool
    duration_ms: float
    row_cap: int
    types: tuple[str, ...] = ()  # Postgres type names (``int8``, ``jsonb``): how to show each column
    time_zone: str | None = None  # the session's TimeZone: timestamptz values are shown in it

    def to_table(self, *, max_cell_chars: int = 500) -> ResultTable:
        return rows_to_table(
            self.columns, self.rows, truncated=self.truncated, row_cap=self.row_cap, max_cell_chars=max_cell_chars,
            types=self.types or None, time_zone=self.time_zone, duration_ms=self.duration_ms,
        )


@dataclass(frozen=True, slots=True)
class ExecResult:
    """Outcome of an approved change: Postgres's command status (e.g. ``DELETE 3``) and time taken."""

    status: str
    rows_affected: int | None
    duration_ms: float


def quote_ident(name: str) -> str:
    """Quote an identifier exactly as Postgres's quote_ident would (always quoted: safe for any role name)."""
    return '"' + name.replace('"', '""') + '"'


def rows_from_status(status: str) -> int | None:
    """``UPDATE 42`` → 42; ``INSERT 0 5`` → 5; DDL → None."""
    parts = status.split()
    if parts and parts[-1].isdigit() and parts[0] in {"INSERT", "UPDATE", "DELETE", "MERGE", "SELECT", "COPY"}:
        return int(parts[-1])
    return None


class PgDatabase:
    """A named database from the config; the pool is created on first use."""

    def __init__(self, name: str, settings: DatabaseSettings) -> None:
        self.name = name
        self.settings = settings
        self.limits = QueryLimits.from_settings(settings)
        self.change_limits = replace(self.limits, statement_timeout_ms=settings.change_timeout_ms, label="change")
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    def pool_usage(self) -> tuple[int, int] | None:
        """(open connections, idle ones) for /metrics; None before the pool exists (it is never created here)."""
        pool = self._pool
        if pool is None or pool.is_closing():
            return None
        return pool.get_size(), pool.get_idle_size()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await self._create_pool()
        return self._pool

    async def _create_pool(self) -> asyncpg.Pool:
        try:
            pool = await asyncpg.create_pool(
                dsn=self.settings.dsn.get_secret_value(),
                min_size=self.settings.pool_min_size,
                max_size=self.settings.pool_max_size,
                timeout=self.settings.connect_timeout_s,
                command_timeout=None,
                server_settings={"application_name": f"pgbot:{self.name}"},
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailableError(
                f"Database '{self.name}' cannot be reached: {describe_connect_error(exc)}"
            ) from exc
        # The pool connects lazily when min_size is 0: prove the database answers now, with a clear error.
        try:
            async with pool.acquire(timeout=self.settings.connect_timeout_s) as conn:
                await conn.fetchval("SELECT 1")
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await pool.close()
            raise DatabaseUnavailableError(
                f"Database '{self.name}' cannot be reached: {describe_connect_error(exc)}"
            ) from exc
        return pool

    @asynccontextmanager
    async def transaction(
        self, *, role: str | None, limits: QueryLimits, read_only: bool
    ) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction with the limits and role applied; errors translated."""
        pool = await self.pool()
        try:
            async with self._acquire(pool) as conn:
                tx = conn.transaction(readonly=read_only)
                await tx.start()
                try:
                    setup = (
                        f"SET LOCAL statement_timeout = {int(limits.statement_timeout_ms)}; "
                        f"SET LOCAL lock_timeout = {int(limits.lock_timeout_ms)}; "
                        f"SET LOCAL idle_in_transaction_session_timeout = "
                        f"{int(limits.statement_timeout_ms) * 4}"
                    )
                    if role:  # same round trip: under load every extra await waits behind the whole loop
                        setup += f"; SET LOCAL ROLE {quote_ident(role)}"
                    await conn.execute(setup)
                    yield conn
                except BaseException:
                    await _rollback_quietly(tx)
                    raise
                else:
                    await tx.commit()
        except asyncpg.PostgresError as exc:
            raise self._explained(exc, role=role, limits=limits, read_only=read_only) from exc
        except (TimeoutError, OSError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailableError(
                f"Database '{self.name}' connection failed: {describe_connect_error(exc)}"
            ) from exc

    def _explained(
        self, exc: asyncpg.PostgresError, *, role: str | None, limits: QueryLimits, read_only: bool
    ) -> DatabaseError:
        """Postgres's error with the limit or privilege that stopped it and what to do next (people read it)."""
        message = getattr(exc, "message", None) or str(exc)
        if isinstance(exc, asyncpg.QueryCanceledError) and "statement timeout" in message:
            return QueryTimeoutError(
                f"Timed out after {seconds_text(limits.statement_timeout_ms)}, the {limits.label} limit on "
                f"'{self.name}' (Postgres: {message}): {self._after_timeout(limits)}"
            )
        if isinstance(exc, asyncpg.LockNotAvailableError):
            return QueryTimeoutError(
                f"Waited {seconds_text(limits.lock_timeout_ms)} for a lock on '{self.name}', the lock limit "
                f"(Postgres: {message}): another session holds it; try again in a moment."
            )
        denied = _DENIED.match(message)
        if isinstance(exc, asyncpg.InsufficientPrivilegeError) and denied:
            who = f"Role {role}" if role else "pgbot's login role"
            verb = "can't read" if read_only else "may not change"
            step = " /tables lists what you can read." if read_only else ""
            return PermissionDeniedError(
                f"{who} {verb} {denied.group(1)} {denied.group(2)} on '{self.name}' (Postgres: {message}).{step}"
            )
        return translate_pg_error(exc, database=self.name)

    def _after_timeout(self, limits: QueryLimits) -> str:
        if limits.label == "read":
            export_ms = self.settings.export_timeout_ms or 0
            longer = " or export the rows (exports may run longer)" if export_ms > limits.statement_timeout_ms else ""
            return f"narrow the dates or filters{longer}."
        if limits.label == "export":
            return "narrow the query (fewer rows or columns), or ask whoever runs pgbot for a longer export_timeout_ms."
        return "nothing was changed; do it in smaller batches."

    @asynccontextmanager
    async def _acquire(self, pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection. Every connection busy for ``pool_acquire_timeout_s`` is a BusyError, not
        "unreachable"; release is shielded by asyncpg, so a cancelled turn still returns its connection."""
        try:
            conn = await pool.acquire(timeout=self.settings.pool_acquire_timeout_s)
        except TimeoutError as exc:
            if pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
                raise BusyError(
                    f"All {pool.get_max_size()} connections to '{self.name}' stayed busy for "
                    f"{self.settings.pool_acquire_timeout_s:g} s; please try again in a moment."
                ) from exc
            raise
        try:
            yield conn
        finally:
            await pool.release(conn)

    async def fetch(self, sql: str, *, role: str | None, limits: QueryLimits | None = None) -> QueryResult:
        """Run one already-guarded read in a READ ONLY transaction; rows capped in the fetch itself."""
        limits = limits or self.limits
        started = time.perf_counter()
        async with self.transaction(role=role, limits=limits, read_only=True) as conn:
            stmt = await conn.prepare(SQL_TAG + sql)
            attributes = stmt.get_attributes()
            columns = tuple(a.name for a in attributes)
            types = tuple(a.type.name for a in attributes)
            # Reported by the server with every change (GUC_REPORT): no extra round trip.
            time_zone = getattr(conn.get_settings(), "TimeZone", None)
            if not columns:  # a statement that returns no rows (e.g. SHOW of nothing): run it plainly
                await stmt.fetch()
                rows: list[tuple[object, ...]] = []
                truncated = False
            else:
                cursor = await stmt.cursor()
                records = await cursor.fetch(limits.max_rows + 1)
                truncated = len(records) > limits.max_rows
                rows = [tuple(r) for r in records[: limits.max_rows]]
        return QueryResult(
            columns=columns,
            rows=rows,
            truncated=truncated,
            duration_ms=(time.perf_counter() - started) * 1000,
            row_cap=limits.max_rows,
            types=types,
            time_zone=str(time_zone) if time_zone else None,
        )

    async def run(
        self,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        role: str | None,
        limits: QueryLimits | None = None,
        read_only: bool,
        rollback: bool = False,
    ) -> T:
        """Run ``work`` on a connection in a limited transaction; ``rollback`` always undoes it (previews)."""
        limits = limits or self.limits
        if not rollback:
            async with self.transaction(role=role, limits=limits, read_only=read_only) as conn:
                return await work(conn)
        result: list[T] = []

        async def undo(conn: asyncpg.Connection) -> None:
            result.append(await work(conn))
            raise _Rollback

        try:
            async with self.transaction(role=role, limits=limits, read_only=read_only) as conn:
                await undo(conn)
        except _Rollback:
            return result[0]
        raise AssertionError("unreachable: a rollback transaction always raises _Rollback")

    async def execute(self, sql: str, *, role: str | None, limits: QueryLimits | None = None) -> ExecResult:
        """Run one approved change in its own transaction as ``role``."""
        started = time.perf_counter()

        async def work(conn: asyncpg.Connection) -> str:
            status: str = await conn.execute(SQL_TAG + sql)
            return status

        status = await self.run(work, role=role, limits=limits, read_only=False)
        return ExecResult(status=status, rows_affected=rows_from_status(status),
                          duration_ms=(time.perf_counter() - started) * 1000)

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


class _Rollback(Exception):
    """Raised inside a preview transaction so it is always rolled back."""


async def _rollback_quietly(tx: asyncpg.transaction.Transaction) -> None:
    try:
        await tx.rollback()
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        # The connection is already broken; the pool discards it on release.
        log.debug("rollback_failed", error=type(exc).__name__)


_DENIED = re.compile(r"permission denied for (table|view|materialized view|sequence|schema|function|column|"
                     r"relation|database|large object|foreign table|type|procedure|routine) (.+)$")


def seconds_text(ms: int) -> str:
    """``15 s``, ``2.5 s``, ``30 min``: a limit as people say it."""
    if ms >= 120_000 and ms % 60_000 == 0:
        return f"{ms // 60_000} min"
    return f"{ms / 1000:g} s"


def translate_pg_error(exc: asyncpg.PostgresError, *, database: str) -> DatabaseError:
    """Map Postgres's error to the user-facing type, keeping Postgres's own message (it is safe and useful)."""
    message = getattr(exc, "message", None) or str(exc)
    detail = getattr(exc, "detail", None)
    hint = getattr(exc, "hint", None)
    text = message + (f" ({detail})" if detail else "") + (f" Hint: {hint}" if hint else "")
    if isinstance(exc, asyncpg.QueryCanceledError | asyncpg.LockNotAvailableError):
        return QueryTimeoutError(f"The query on '{database}' was cancelled: {message}.")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return PermissionDeniedError(f"Postgres refused on '{database}': {text}")
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.AdminShutdownError | asyncpg.CrashShutdownError
                  | asyncpg.CannotConnectNowError):
        # The server restarted or dropped the session mid-statement; the caller does not retry by itself.
        return DatabaseUnavailableError(
            f"The connection to database '{database}' was lost while the query ran (the server restarted or "
            f"closed it: {message}). Please ask again in a moment."
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError | asyncpg.InvalidAuthorizationSpecificationError):
        return DatabaseUnavailableError(f"Database '{database}' cannot be reached: {message}")
    return DatabaseError(f"Postgres error on '{database}': {text}")


def describe_connect_error(exc: BaseException) -> str:
    """A one-line, secret-free reason a connection failed."""
    if isinstance(exc, asyncio.TimeoutError):
        return "connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, asyncpg.PostgresError):
        return getattr(exc, "message", None) or type(exc).__name__
    text = str(exc) or type(exc).__name__
    # asyncpg/OS messages may include the host, never the password; keep them one line.
    return text.splitlines()[0][:200]

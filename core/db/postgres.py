"""One configured database: a lazily created asyncpg pool and the only code that runs SQL on it.

Every statement runs inside a transaction that starts with ``SET LOCAL statement_timeout``,
``SET LOCAL lock_timeout`` and ``SET LOCAL ROLE <mapped role>``, so Postgres itself enforces time limits and
grants. Reads run in a ``READ ONLY`` transaction and fetch through a server-side cursor, so the row cap is
applied in the database fetch and a million-row result never reaches Python memory; wide values (text, json,
bytea, arrays, …) are cut by the database too (:func:`bounded_select`), so no single cell can either.

Identity (issue 13): SQL that runs SQL (a user function with dynamic SQL, ``set_config('role', …)``) can switch
the session's role. So every transaction first checks that its connection is still the login's, unchanged
(same round trip as the setup); after the statement, still in the transaction, that ``current_user``,
``session_user`` and the ``role`` setting are exactly what pgbot set. A mismatch discards the result, closes
the connection, writes a ``security`` audit row and raises :class:`SecurityError`. A connection returning to
the pool gets ``RESET SESSION AUTHORIZATION; RESET ROLE`` besides asyncpg's own reset (``RESET ALL`` does not
reset the role). ``role_dsns`` gives a role its own login, so Postgres bounds it whatever happens above.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

import asyncpg
import structlog

from core.config import DatabaseSettings
from core.db.audit_rows import record_security_event
from core.db.bounded import MAX_RESULT_BYTES, bounded_select, fetch_within, row_bound
from core.db.bounded_explain import explain_discarded, explain_lines
from core.db.functions import AllowedFunctions, check_functions
from core.errors import (
    BusyError,
    DatabaseError,
    DatabaseUnavailableError,
    PermissionDeniedError,
    QueryTimeoutError,
    SecurityError,
)
from core.messages import ResultTable, rows_to_table
from core.sqlguard import CheckedSql

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
    """A named database from the config; the pool is created on first use. The
    :class:`core.db.base.PostgresDatabase` (and so the ``Database``) pgbot runs on."""

    def __init__(self, name: str, settings: DatabaseSettings) -> None:
        self.name = name
        self.settings = settings
        self.limits = QueryLimits.from_settings(settings)
        self.change_limits = replace(self.limits, statement_timeout_ms=settings.change_timeout_ms, label="change")
        self.allowed_functions = AllowedFunctions(settings.allowed_functions)
        self._pools: dict[str | None, _Pool] = {}  # None: the main DSN; a role name: its role_dsns login
        self._pool_lock = asyncio.Lock()

    @property
    def _pool(self) -> asyncpg.Pool | None:
        """The main DSN's pool, if created (tests and /metrics look at it)."""
        main = self._pools.get(None)
        return main.pool if main is not None else None

    def pool_usage(self) -> tuple[int, int] | None:
        """(open connections, idle ones) over every pool, for /metrics; None before any exists."""
        live = [p.pool for p in self._pools.values() if not p.pool.is_closing()]
        if not live:
            return None
        return sum(p.get_size() for p in live), sum(p.get_idle_size() for p in live)

    def _pool_key(self, role: str | None) -> str | None:
        return role if role is not None and role in self.settings.role_dsns else None

    async def pool(self, *, role: str | None = None) -> asyncpg.Pool:
        """The pool statements run as ``role`` use: its own login when ``role_dsns`` has one, else the main."""
        return (await self._pool_for(role)).pool

    async def _pool_for(self, role: str | None, *, main_login: bool = False) -> _Pool:
        key = None if main_login else self._pool_key(role)
        found = self._pools.get(key)
        if found is not None:
            return found
        async with self._pool_lock:
            if key not in self._pools:
                dsn = self.settings.role_dsns[key] if key is not None else self.settings.dsn
                self._pools[key] = await self._create_pool(dsn.get_secret_value())
        return self._pools[key]

    async def login(self, *, role: str | None = None, main_login: bool = False) -> str:
        """The login role (session user) of the pool statements as ``role`` use."""
        return (await self._pool_for(role, main_login=main_login)).login

    async def _create_pool(self, dsn: str) -> _Pool:
        try:
            pool = await asyncpg.create_pool(
                dsn=dsn,
                min_size=self.settings.pool_min_size,
                max_size=self.settings.pool_max_size,
                timeout=self.settings.connect_timeout_s,
                command_timeout=None,
                server_settings={"application_name": f"pgbot:{self.name}"},
                reset=_reset_session,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailableError(
                f"Database '{self.name}' cannot be reached: {describe_connect_error(exc)}"
            ) from exc
        # The pool connects lazily when min_size is 0: prove the database answers now, with a clear error.
        try:
            async with pool.acquire(timeout=self.settings.connect_timeout_s) as conn:
                login = str(await conn.fetchval("SELECT session_user"))
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await pool.close()
            raise DatabaseUnavailableError(
                f"Database '{self.name}' cannot be reached: {describe_connect_error(exc)}"
            ) from exc
        return _Pool(pool=pool, login=login)

    @asynccontextmanager
    async def transaction(
        self, *, role: str | None, limits: QueryLimits, read_only: bool, guarded: CheckedSql | None = None,
        verify: bool = True, main_login: bool = False,
    ) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction with the limits and role applied; errors translated.

        ``guarded``: the checked read the work runs; its functions are checked against the catalog before it
        runs (not those of pgbot's own ``CheckedSql.trusted`` SQL).
        ``verify``: check the session's identity after the work (callers that RESET ROLE themselves pass
        False and call :meth:`verify_identity` right after the untrusted statement instead).
        ``main_login``: use the main DSN even when ``role_dsns`` has a login for ``role`` (approved changes
        whose audit row, written as the main login, commits in the same transaction).
        """
        if guarded is not None:
            guarded = CheckedSql.require(guarded, path="read", where="PgDatabase.transaction")
        pooled = await self._pool_for(role, main_login=main_login)
        try:
            for attempt in range(2):
                async with self._acquire(pooled.pool) as conn:
                    tx = conn.transaction(readonly=read_only)
                    await tx.start()
                    try:
                        await conn.execute(_setup_sql(pooled.login, role, limits))
                    except asyncpg.InvalidTextRepresentationError as exc:
                        if _IDENTITY_MARK not in str(exc):
                            raise
                        # A connection some earlier statement left under another identity: never reuse it.
                        conn.terminate()
                        await self._security_event(role=role, found=str(exc), sql="(a pooled connection)",
                                                   what="connection_taken")
                        if attempt == 0:
                            continue
                        raise SecurityError() from None
                    try:
                        if guarded is not None and not guarded.is_trusted:
                            await check_functions(conn, guarded, allowed=self.allowed_functions,
                                                  database=self.name)
                        yield conn
                        if verify:
                            await self.verify_identity(conn, role=role, sql=guarded.sql if guarded else "",
                                                       main_login=main_login)
                    except BaseException:
                        await _rollback_quietly(tx)
                        raise
                    else:
                        await tx.commit()
                    return
        except asyncpg.PostgresError as exc:
            raise self._explained(exc, role=role, limits=limits, read_only=read_only) from exc
        except (TimeoutError, OSError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailableError(
                f"Database '{self.name}' connection failed: {describe_connect_error(exc)}"
            ) from exc

    async def verify_identity(self, conn: asyncpg.Connection, *, role: str | None, sql: str = "",
                              main_login: bool = False) -> None:
        """Still in the statement's transaction: the session is exactly who pgbot made it, or SecurityError.

        On a mismatch the connection is terminated (the server rolls the transaction back, nothing the
        statement read is returned) and a ``security`` event is audited.
        """
        login = (await self._pool_for(role, main_login=main_login)).login
        row = await conn.fetchrow("SELECT session_user::text AS s, current_user::text AS c, "
                                  "current_setting('role') AS r")
        assert row is not None
        expected = (login, role or login, role or "none")
        found = (row["s"], row["c"], row["r"])
        if found == expected:
            return
        conn.terminate()
        await self._security_event(
            role=role, sql=sql, what="identity_changed",
            found=f"session_user={found[0]}, current_user={found[1]}, role={found[2]}; expected "
                  f"session_user={expected[0]}, current_user={expected[1]}, role={expected[2]}",
        )
        raise SecurityError()

    async def _security_event(self, *, role: str | None, found: str, sql: str, what: str) -> None:
        """Log and audit (best effort: the refusal must not depend on the audit table being writable)."""
        log.warning("security_event", database=self.name, what=what, role=role, found=found[:300])
        try:
            await record_security_event(self, role=role, found=found, sql=sql, what=what)
        except (DatabaseError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.error("security_event_not_audited", database=self.name, error=type(exc).__name__)

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

    async def fetch(self, checked: CheckedSql, *, role: str | None,
                    limits: QueryLimits | None = None) -> QueryResult:
        """Run one checked read in a READ ONLY transaction; rows capped in the fetch, wide cells cut by the
        database, functions checked against the catalog first and the session's identity after.

        Only a :class:`CheckedSql` is taken (a plain string is a TypeError): ``SqlGuard.check_read``'s, or
        ``CheckedSql.trusted`` for pgbot's own constant SQL, whose functions are not checked.
        """
        checked = CheckedSql.require(checked, path="read", where="PgDatabase.fetch")
        limits = limits or self.limits
        started = time.perf_counter()
        async with self.transaction(role=role, limits=limits, read_only=True, guarded=checked) as conn:
            stmt = await conn.prepare(SQL_TAG + checked.sql)
            attributes = stmt.get_attributes()
            columns = tuple(a.name for a in attributes)
            types = tuple(a.type.name for a in attributes)
            # Reported by the server with every change (GUC_REPORT): no extra round trip.
            time_zone = getattr(conn.get_settings(), "TimeZone", None)
            bounded = bounded_select(checked, attributes, max_chars=limits.max_cell_chars)
            if bounded is not None:
                stmt = await conn.prepare(SQL_TAG + bounded.sql)
            row_cap = limits.max_rows
            rows: list[tuple[object, ...]] = []
            if checked.statement_type == "ExplainStmt":  # folded constants make lines of any size: cut in SQL
                plan = await explain_lines(conn, checked.sql, max_lines=limits.max_rows,
                                           max_chars=limits.max_cell_chars, max_bytes=MAX_RESULT_BYTES)
                rows, truncated = [(line,) for line in plan.lines], plan.more  # a JSON plan is one cut line
                if truncated and len(rows) < row_cap:  # the byte budget cut it: say where
                    row_cap = len(rows)
            elif not columns:  # a statement that returns no rows (e.g. SHOW of nothing): run it plainly
                await stmt.fetch()
                truncated = False
            else:
                cursor = await stmt.cursor()
                kept, truncated, by_size = await fetch_within(
                    cursor, max_rows=limits.max_rows,
                    bound=row_bound(len(columns), bounded, max_chars=limits.max_cell_chars))
                if by_size and truncated:  # so many wide columns that fewer rows fit: say where it cut
                    row_cap = len(kept)
                rows = [bounded.row(r) for r in kept] if bounded is not None else [tuple(r) for r in kept]
        return QueryResult(
            columns=columns,
            rows=rows,
            truncated=truncated,
            duration_ms=(time.perf_counter() - started) * 1000,
            row_cap=row_cap,
            types=types,
            time_zone=str(time_zone) if time_zone else None,
        )

    async def plan(self, checked: CheckedSql, *, role: str | None) -> None:
        """EXPLAIN a checked read as ``role`` without running it; the plan stays in the database, whatever its
        size (planning runs IMMUTABLE functions of constants, so the catalog's function check runs first)."""
        checked = CheckedSql.require(checked, path="read", where="PgDatabase.plan")

        async def work(conn: asyncpg.Connection) -> None:
            await explain_discarded(conn, f"EXPLAIN {checked.sql}")

        await self.run(work, role=role, read_only=True, guarded=checked)

    async def run(
        self,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        role: str | None,
        read_only: bool,
        limits: QueryLimits | None = None,
        statement: str = "",
        rollback: bool = False,
        guarded: CheckedSql | None = None,
        verify: bool = True,
        main_login: bool = False,
    ) -> T:
        """Run ``work`` on a connection in a limited transaction; ``rollback`` always undoes it (previews).

        ``guarded`` and ``verify`` as for :meth:`transaction`: pass ``guarded`` (a CheckedSql of the read
        path) whenever ``work`` runs SQL a user or the model wrote on the read path. ``statement``: the SQL a
        security event names (when not ``guarded``'s).
        """
        if guarded is not None:
            guarded = CheckedSql.require(guarded, path="read", where="PgDatabase.run")
        statement = guarded.sql if guarded is not None else statement
        limits = limits or self.limits
        def opened() -> AbstractAsyncContextManager[asyncpg.Connection]:
            return self.transaction(role=role, limits=limits, read_only=read_only, guarded=guarded, verify=verify,
                                    main_login=main_login)

        if not rollback:
            async with opened() as conn:
                return await work(conn)
        result: list[T] = []

        async def undo(conn: asyncpg.Connection) -> None:
            result.append(await work(conn))
            if verify:  # the rollback below skips the transaction's own check: a preview is checked here
                await self.verify_identity(conn, role=role, sql=statement, main_login=main_login)
            raise _Rollback

        try:
            async with opened() as conn:
                await undo(conn)
        except _Rollback:
            return result[0]
        raise AssertionError("unreachable: a rollback transaction always raises _Rollback")

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pooled in pools:
            await pooled.pool.close()


@dataclass(frozen=True, slots=True)
class _Pool:
    pool: asyncpg.Pool
    login: str  # the session user every connection of this pool must have


_IDENTITY_MARK = "pgbot: connection identity changed"


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _setup_sql(login: str, role: str | None, limits: QueryLimits) -> str:
    """The transaction's setup, one round trip: first prove the connection is the login's, unchanged (the cast
    fails only on a mismatch, with a marked message), then the limits and the role."""
    setup = (
        f"SELECT ({quote_literal(_IDENTITY_MARK + ': ')} || session_user || '/' || current_user || '/' || "
        f"current_setting('role'))::int WHERE session_user <> {quote_literal(login)} "
        f"OR current_user <> {quote_literal(login)} OR current_setting('role') <> 'none'; "
        f"SET LOCAL statement_timeout = {int(limits.statement_timeout_ms)}; "
        f"SET LOCAL lock_timeout = {int(limits.lock_timeout_ms)}; "
        f"SET LOCAL idle_in_transaction_session_timeout = {int(limits.statement_timeout_ms) * 4}"
    )
    if role:  # same round trip: under load every extra await waits behind the whole loop
        setup += f"; SET LOCAL ROLE {quote_ident(role)}"
    return setup


async def _reset_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: asyncpg's (``RESET ALL`` and more) does not reset ``role`` or
    ``session_authorization``, so a role set with ``set_config('role', x, false)`` would outlive the turn."""
    await conn.execute("RESET SESSION AUTHORIZATION; RESET ROLE; " + (conn.get_reset_query() or ""))


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
    # An error inside a DO block (EXPLAIN runs in one) points into the inner statement, not the block.
    position = str(getattr(exc, "position", None) or "")
    inner_position = str(getattr(exc, "internal_position", None) or "")
    inner_query = getattr(exc, "internal_query", None)
    located = ((int(position), None) if position.isdigit()
               else (int(inner_position), inner_query) if inner_position.isdigit() and inner_query else (None, None))
    return DatabaseError(f"Postgres error on '{database}': {text}", position=located[0], query=located[1],
                         sqlstate=getattr(exc, "sqlstate", None))


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

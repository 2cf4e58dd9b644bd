"""``Database`` and ``PostgresDatabase``: what pgbot's code needs of a database, as types, so that what runs
without a PostgreSQL server (the question path, in tests) and what does not is said in the signatures.

``Database`` is the question path: a checked read (:meth:`~Database.fetch`), its plan (:meth:`~Database.plan`,
EXPLAIN first) and pgbot's own catalog, server-facts and bookkeeping work (:meth:`~Database.run`, on a
:class:`Connection` with asyncpg's four plain calls). :class:`core.db.postgres.PgDatabase` and
:class:`core.db.memory.MemoryDatabase` (canned results, for tests) implement it; ``ToolContext.database`` and
``DatabaseRegistry.get`` are typed to it.

``PostgresDatabase`` adds what only a real server gives: pools and sessions (pg_dump, COPY, autocommit
statements), the identity check and main login around approved changes, the change time limit, previews and
diagnostics that need all of asyncpg (prepared statements, savepoints). Work that needs it asks for it by name:
``DatabaseRegistry.postgres`` / ``ToolContext.postgres``, which refuse a database that is not a server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import asyncpg

    from core.config import DatabaseSettings
    from core.db.functions import AllowedFunctions
    from core.db.postgres import QueryLimits, QueryResult
    from core.sqlguard import CheckedSql

T = TypeVar("T")


class Connection(Protocol):
    """What :meth:`Database.run` hands its work: asyncpg's plain calls. Rows and values are asyncpg's own
    (untyped: ``asyncpg.Record``, any SQL value); work needing more of a connection takes a PostgresDatabase."""

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]: ...

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...  # a SQL value: its type is the statement's

    async def execute(self, query: str, *args: object) -> str: ...


class Database(Protocol):
    """One configured database as a turn's question path uses it."""

    name: str
    settings: DatabaseSettings
    limits: QueryLimits

    async def fetch(self, checked: CheckedSql, *, role: str | None, limits: QueryLimits | None = None
                    ) -> QueryResult:
        """One read from ``SqlGuard.check_read`` (or ``CheckedSql.trusted``), as ``role``, rows capped."""
        ...

    async def plan(self, checked: CheckedSql, *, role: str | None) -> None:
        """Plan a read from ``SqlGuard.check_read`` as ``role`` without running it: a DatabaseError when
        PostgreSQL would refuse it (unknown table or column, types, privileges), before it costs a run."""
        ...

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, role: str | None, read_only: bool,
                  limits: QueryLimits | None = None, statement: str = "") -> T:
        """``work`` in a limited transaction as ``role``: pgbot's own SQL (catalog, server facts, its tables).
        ``statement``: the SQL a security event names."""
        ...

    def pool_usage(self) -> tuple[int, int] | None:
        """(open connections, idle ones) for /metrics; None when there is no pool."""
        ...

    async def aclose(self) -> None:
        ...


class PostgresDatabase(Database, Protocol):
    """A Database that is a PostgreSQL server: what approved changes, exports, previews, diagnostics,
    migrations and backups need besides the question path (see the module's docstring)."""

    change_limits: QueryLimits
    allowed_functions: AllowedFunctions

    async def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, role: str | None, read_only: bool,
                  limits: QueryLimits | None = None, statement: str = "", rollback: bool = False,
                  guarded: CheckedSql | None = None, verify: bool = True, main_login: bool = False) -> T:
        """As :meth:`Database.run` on a whole asyncpg connection; ``rollback`` always undoes the work
        (previews), ``guarded``: the read-path statement ``work`` runs (its functions are checked against the
        catalog first), ``verify``/``main_login``: see ``PgDatabase.transaction``."""
        ...

    async def pool(self, *, role: str | None = None) -> asyncpg.Pool:
        """The pool statements as ``role`` use (its own login when ``role_dsns`` has one)."""
        ...

    async def verify_identity(self, conn: asyncpg.Connection, *, role: str | None, sql: str = "",
                              main_login: bool = False) -> None:
        """Still in the statement's transaction: the session is exactly who pgbot made it, or SecurityError."""
        ...

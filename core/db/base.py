"""``Database``: what a turn on the question path needs of a database, so the loop runs on memory in tests.

:class:`core.db.postgres.PgDatabase` is the implementation; :class:`core.db.memory.MemoryDatabase` answers
canned results without PostgreSQL. Pools, identity checks and approved changes stay on ``PgDatabase`` alone:
the tools that need them (changes, exports, diagnostics, migrations, backups) take it by name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    import asyncpg

    from core.config import DatabaseSettings
    from core.db.postgres import QueryLimits, QueryResult
    from core.sqlguard import CheckedSql, Classification

T = TypeVar("T")


class Database(Protocol):
    """One configured database: checked reads (:meth:`fetch`) and pgbot's own catalog work (:meth:`run`)."""

    name: str
    settings: DatabaseSettings
    limits: QueryLimits

    async def fetch(self, checked: CheckedSql, *, role: str | None, limits: QueryLimits | None = None
                    ) -> QueryResult:
        """One read from ``SqlGuard.check_read`` (or ``CheckedSql.trusted``), as ``role``, rows capped."""
        ...

    async def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, role: str | None,
                  limits: QueryLimits | None = None, read_only: bool, rollback: bool = False,
                  guarded: Classification | None = None, verify: bool = True, main_login: bool = False,
                  statement: str = "") -> T:
        """``work`` on a connection in a limited transaction as ``role`` (catalog, server facts, EXPLAIN)."""
        ...

    def pool_usage(self) -> tuple[int, int] | None:
        """(open connections, idle ones) for /metrics; None when there is no pool."""
        ...

    async def aclose(self) -> None:
        ...

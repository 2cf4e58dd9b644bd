"""``MemoryDatabase``: the :class:`core.db.base.Database` of unit tests, canned results keyed by SQL.

It runs nothing: each statement (normalised whitespace) must have been given an answer, else it fails the way
Postgres would fail an unknown table, so a test never passes on SQL it did not expect. It keeps what ran
(:attr:`MemoryDatabase.ran`), takes only :class:`CheckedSql` in :meth:`fetch` and :meth:`plan` like
``PgDatabase``, caps rows the same way, and refuses an answer to a role it was not given to
(``PermissionDeniedError``). :meth:`plan` succeeds for a statement it has an answer for, as EXPLAIN would.
:meth:`run` hands ``work`` a :class:`core.db.base.Connection` over the same answers. It is no
``PostgresDatabase``: ``DatabaseRegistry.postgres`` refuses it, so exports, changes and diagnostics fail
clearly on it instead of half-working.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from core.config import DatabaseSettings
from core.db.postgres import QueryLimits, QueryResult
from core.errors import DatabaseError, PermissionDeniedError
from core.sqlguard import CheckedSql

if TYPE_CHECKING:
    from core.db.base import Connection, Database

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Canned:
    """One statement's answer; ``roles``: who may read it (None: every role, the login included)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    types: tuple[str, ...] = ()
    roles: frozenset[str | None] | None = None


@dataclass(frozen=True, slots=True)
class Ran:
    """One statement as it reached the database: its text, arguments, role and transaction mode; ``planned``:
    only planned (:meth:`MemoryDatabase.plan`), not run."""

    sql: str
    role: str | None
    read_only: bool
    args: tuple[object, ...] = ()
    planned: bool = False


def normalised(sql: str) -> str:
    return " ".join(sql.split())


class MemoryDatabase:
    """A named in-memory database; :meth:`answer` gives it the result of one statement."""

    def __init__(self, name: str, settings: DatabaseSettings | None = None) -> None:
        self.name = name
        self.settings = settings or DatabaseSettings(dsn=f"postgresql://memory@memory.invalid/{name}")  # type: ignore[arg-type]
        self.limits = QueryLimits.from_settings(self.settings)
        self.ran: list[Ran] = []
        self.closed = False
        self._answers: dict[str, Canned] = {}

    def answer(self, sql: str, *, columns: Sequence[str], rows: Sequence[Sequence[object]] = (),
               types: Sequence[str] = (), roles: Collection[str | None] | None = None) -> None:
        self._answers[normalised(sql)] = Canned(
            columns=tuple(columns), rows=tuple(tuple(r) for r in rows), types=tuple(types),
            roles=frozenset(roles) if roles is not None else None)

    def _lookup(self, sql: str, *, role: str | None, read_only: bool, args: tuple[object, ...] = (),
                planned: bool = False) -> Canned:
        if self.closed:
            raise DatabaseError(f"Database '{self.name}' is closed.")
        self.ran.append(Ran(sql=sql, role=role, read_only=read_only, args=args, planned=planned))
        canned = self._answers.get(normalised(sql))
        if canned is None:
            raise DatabaseError(f"Postgres error on '{self.name}': the in-memory database has no answer for "
                                f"{normalised(sql)[:200]!r}", sqlstate="42P01")
        if canned.roles is not None and role not in canned.roles:
            who = f"Role {role}" if role else "pgbot's login role"
            raise PermissionDeniedError(f"{who} can't read this on '{self.name}' (the in-memory answer is for "
                                        f"{', '.join(sorted(str(r) for r in canned.roles))}).")
        return canned

    async def fetch(self, checked: CheckedSql, *, role: str | None, limits: QueryLimits | None = None
                    ) -> QueryResult:
        """As :meth:`PgDatabase.fetch`: a CheckedSql read only, rows capped at ``limits.max_rows``."""
        checked = CheckedSql.require(checked, path="read", where="MemoryDatabase.fetch")
        limits = limits or self.limits
        started = time.perf_counter()
        canned = self._lookup(checked.sql, role=role, read_only=True)
        return QueryResult(columns=canned.columns, rows=list(canned.rows[:limits.max_rows]),
                           truncated=len(canned.rows) > limits.max_rows,
                           duration_ms=(time.perf_counter() - started) * 1000, row_cap=limits.max_rows,
                           types=canned.types)

    async def plan(self, checked: CheckedSql, *, role: str | None) -> None:
        """As :meth:`PgDatabase.plan`: a CheckedSql read only; fails as its :meth:`fetch` would, runs nothing."""
        checked = CheckedSql.require(checked, path="read", where="MemoryDatabase.plan")
        self._lookup(checked.sql, role=role, read_only=True, planned=True)

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, role: str | None, read_only: bool,
                  limits: QueryLimits | None = None, statement: str = "") -> T:
        """``work`` on a connection that answers from the canned results (see the module's docstring)."""
        return await work(_Connection(self, role=role, read_only=read_only))

    def pool_usage(self) -> tuple[int, int] | None:
        return None  # no connections: /metrics shows no pool for it

    async def aclose(self) -> None:
        self.closed = True


class _Connection:
    """The :class:`core.db.base.Connection` of :meth:`MemoryDatabase.run`: asyncpg's plain calls, canned."""

    def __init__(self, db: MemoryDatabase, *, role: str | None, read_only: bool) -> None:
        self._db, self._role, self._read_only = db, role, read_only

    def _records(self, sql: str, args: tuple[object, ...]) -> list[Record]:
        canned = self._db._lookup(sql, role=self._role, read_only=self._read_only, args=args)
        return [Record(canned.columns, row) for row in canned.rows]

    async def fetch(self, query: str, *args: object) -> list[Record]:
        return self._records(query, args)

    async def fetchrow(self, query: str, *args: object) -> Record | None:
        records = self._records(query, args)
        return records[0] if records else None

    async def fetchval(self, query: str, *args: object) -> object:
        records = self._records(query, args)
        return records[0][0] if records else None

    async def execute(self, query: str, *args: object) -> str:
        return f"SELECT {len(self._records(query, args))}"


class Record(Mapping[str, object]):
    """A row read by position or by column name, like ``asyncpg.Record``."""

    def __init__(self, columns: tuple[str, ...], values: tuple[object, ...]) -> None:
        self._columns, self._values = columns, values

    def __getitem__(self, key: str | int) -> object:
        if isinstance(key, int):
            return self._values[key]
        if key not in self._columns:
            raise KeyError(key)
        return self._values[self._columns.index(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


if TYPE_CHECKING:
    def _is_a_database(db: MemoryDatabase) -> Database:  # mypy: MemoryDatabase satisfies the protocol
        return db

    def _is_a_connection(conn: _Connection) -> Connection:  # and its connection the one run promises
        return conn

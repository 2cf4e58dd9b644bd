"""Run an approved INSERT, UPDATE or DELETE and keep its rows, in its own transaction, as its role.

Keeping rows never makes a change fail that would have run: whatever stops pgbot from keeping them (no key,
too many rows, a function in the WHERE that must not run twice, a privilege RETURNING needs) is noticed
before the statement or inside a savepoint, and the approved statement then runs exactly as approved,
without RETURNING; the outcome says the change cannot be undone, and why. Used twice: rolled back in the
proposal (so the card knows, before approval, whether the change can be undone and how big its rows are),
and for real after approval.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from core.config import UndoSettings
from core.db.base import PostgresDatabase
from core.db.functions import check_functions
from core.db.postgres import SQL_TAG
from core.errors import GuardError
from core.sqlguard import SqlGuard
from core.undo.catalog import TableFacts, table_facts
from core.undo.statement import IMAGE, KEY, Kind, Target, rows_before, target_of, with_returning

_STATUS = {"insert": "INSERT 0 {}", "update": "UPDATE {}", "delete": "DELETE {}"}
_MOVE_STEP = 2_147_483_647  # MOVE takes a 32-bit count


@dataclass(frozen=True, slots=True)
class Images:
    """The rows of one change: before (UPDATE, DELETE) and after (INSERT, UPDATE), as JSON text."""

    kind: Kind
    facts: TableFacts
    keys: tuple[str, ...]  # each row's key values, a JSON array
    before: tuple[str | None, ...]
    after: tuple[str | None, ...]

    @property
    def size(self) -> int:
        return sum(len(t.encode()) for t in (*self.before, *self.after) if t is not None)


@dataclass(frozen=True, slots=True)
class Captured:
    status: str  # Postgres's command tag, as a plain run reports it
    images: Images | None
    why_not: str = ""  # why no rows were kept ("" when they were, or when nobody asked)


def _over(count: int, bounds: UndoSettings) -> str:
    return f"it changes {count} rows, over the {bounds.max_rows} an undo keeps ([undo] max_rows)"


async def run_change(conn: asyncpg.Connection, sql: str, *, db: PostgresDatabase, bounds: UndoSettings) -> Captured:
    """Run ``sql`` on ``conn`` (inside the caller's transaction, under the role already set), keeping its
    rows when it can; the caller commits or rolls back."""
    plan = await _plan(conn, sql, db=db, bounds=bounds)
    if isinstance(plan, str):
        return await _plain(conn, sql, why=plan)
    target, facts, returning = plan
    before: dict[str, str] = {}
    if target.kind == "update":
        found = await _rows_before(conn, target, facts, db=db, bounds=bounds)
        if isinstance(found, str):
            return await _plain(conn, sql, why=found)
        before = found
    try:
        async with conn.transaction():  # a savepoint: a refused RETURNING leaves the plain run possible
            rows, count = await _run_returning(conn, returning, limit=bounds.max_rows)
    except asyncpg.InsufficientPrivilegeError:
        return await _plain(conn, sql, why=f"your role may not read {facts.qualified} back")
    status = _STATUS[target.kind].format(count)
    if count > bounds.max_rows:
        return Captured(status=status, images=None, why_not=_over(count, bounds))
    keys = tuple(r[1] for r in rows)
    images = Images(kind=target.kind, facts=facts, keys=keys,
                    before=tuple(before.get(k) for k in keys) if target.kind == "update" else
                    tuple(r[0] for r in rows) if target.kind == "delete" else (None,) * count,
                    after=(None,) * count if target.kind == "delete" else tuple(r[0] for r in rows))
    if target.kind == "update" and (None in images.before or len(set(keys)) != len(keys)):
        return Captured(status=status, images=None, why_not=(
            "the rows it changed are not the rows pgbot read first (a volatile WHERE, or a trigger changed a key)"))
    if images.size > bounds.max_bytes:
        return Captured(status=status, images=None, why_not=(
            f"its rows take {images.size} bytes, over the {bounds.max_bytes} an undo keeps ([undo] max_bytes)"))
    return Captured(status=status, images=images)


async def _plan(conn: asyncpg.Connection, sql: str, *, db: PostgresDatabase, bounds: UndoSettings
                ) -> tuple[Target, TableFacts, str] | str:
    target = target_of(sql)
    if isinstance(target, str):
        return target
    async with conn.transaction():  # catalog reads only; a savepoint all the same
        facts = await table_facts(conn, target)
    if isinstance(facts, str):
        return facts
    returning = with_returning(sql, target, facts.key)
    if returning is None:
        return "pgbot could not add RETURNING to this statement without changing it"
    return target, facts, returning


async def _rows_before(conn: asyncpg.Connection, target: Target, facts: TableFacts, *, db: PostgresDatabase,
                       bounds: UndoSettings) -> dict[str, str] | str:
    """UPDATE: its rows as they are, locked until the transaction ends, by key (a join may repeat one)."""
    select = rows_before(target, facts.key, limit=bounds.max_rows + 1)
    try:
        async with conn.transaction():
            await check_functions(conn, SqlGuard().classify(select), allowed=db.allowed_functions,
                                  database=db.name)
            rows = await conn.fetch(SQL_TAG + select)
    except GuardError:
        return "its FROM or WHERE calls a function pgbot will not run a second time to read the rows first"
    except (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError):
        raise  # the statement itself would wait the same way
    except asyncpg.PostgresError as exc:
        return f"pgbot could not read its rows first ({getattr(exc, 'message', type(exc).__name__)})"
    found = {str(r[KEY]): str(r[IMAGE]) for r in rows}
    if len(found) > bounds.max_rows:
        return _over(len(found), bounds)
    return found


async def _run_returning(conn: asyncpg.Connection, sql: str, *, limit: int) -> tuple[list[tuple[str, str]], int]:
    """Run the statement through a cursor: at most ``limit + 1`` rows reach pgbot, the rest are counted."""
    prepared = await conn.prepare(SQL_TAG + sql)
    cursor = await prepared.cursor()
    records = await cursor.fetch(limit + 1)
    count = len(records)
    if count > limit:
        while (moved := await cursor.forward(_MOVE_STEP)) == _MOVE_STEP:
            count += moved
        count += moved
    return [(str(r[IMAGE]), str(r[KEY])) for r in records[:limit]], count


async def _plain(conn: asyncpg.Connection, sql: str, *, why: str) -> Captured:
    status: str = await conn.execute(SQL_TAG + sql)
    return Captured(status=status, images=None, why_not=why)



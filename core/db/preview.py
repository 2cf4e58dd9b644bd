"""What a change would do, found out without doing it.

DML runs inside a transaction that is always rolled back, as the requesting role and under the statement
timeout: Postgres itself says how many rows it touches, and ``RETURNING *`` shows a few of them (for UPDATE
also a few rows as they are now). Only the approved statement ever commits; the preview's SQL may carry an
added ``RETURNING *``, the approved SQL never does.

DDL and admin statements are not run in the preview: they take their lock the moment they start (an ALTER
TABLE waiting behind a long query blocks every reader queued after it) and may rewrite a whole table. The
preview names the objects and the lock instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from pglast import ast, enums, parse_sql
from pglast.stream import RawStream

from core.db.base import PostgresDatabase
from core.db.postgres import SQL_TAG, rows_from_status
from core.errors import PermissionDeniedError
from core.messages import ResultTable, rows_to_table
from core.sqlguard import CheckedSql, Classification

LOCK_EFFECT = {
    "ACCESS EXCLUSIVE": "blocks every read and write of it while the statement runs",
    "EXCLUSIVE": "blocks writes to it while the statement runs; reads continue",
    "SHARE ROW EXCLUSIVE": "blocks writes to it while the statement runs; reads continue",
    "SHARE": "blocks writes to it while the statement runs; reads continue",
    "SHARE UPDATE EXCLUSIVE": "reads and writes continue; other schema changes and VACUUM wait",
    "ROW EXCLUSIVE": "the usual lock for writes: reads and other writes continue; changed rows are locked",
    "ROW SHARE": "the selected rows are locked against writes; everything else continues",
    "ACCESS SHARE": "only conflicts with ACCESS EXCLUSIVE locks",
}

SAMPLE_ROWS = 5
BEFORE_ROWS = 50  # rows as they are now, fetched to pair with the sample by key (the sample's order is Postgres's)
_RETURNING = {"InsertStmt", "UpdateStmt", "DeleteStmt"}  # MERGE ... RETURNING needs PostgreSQL 17
_MOVE_STEP = 2_147_483_647  # MOVE takes a 32-bit count


@dataclass(frozen=True, slots=True)
class ChangePreview:
    """The preview shown beside Approve/Reject."""

    statement_type: str
    ran: bool  # True: executed in a rolled-back transaction; False: described only
    rows_affected: int | None
    status: str | None  # Postgres's command tag from the rolled-back run, e.g. "DELETE 3"
    sample: ResultTable | None  # up to SAMPLE_ROWS rows as they would be after the change
    before: ResultTable | None  # UPDATE only: up to SAMPLE_ROWS matching rows as they are now
    objects: tuple[str, ...]
    lock: str | None
    notes: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # UPDATE: the target's primary key columns, to pair before with after rows
    set_columns: tuple[str, ...] = ()  # UPDATE: the columns it sets


def runs_in_preview(checked: Classification) -> bool:
    """DML (and SELECTs with data-modifying CTEs or row locks) run rolled back; the rest is described."""
    return checked.kind == "write" and checked.statement_type in {*_RETURNING, "MergeStmt", "SelectStmt"}


async def preview_change(db: PostgresDatabase, checked: CheckedSql, *, role: str | None) -> ChangePreview:
    """Preview one checked change; Postgres errors (permission, constraint, timeout) propagate translated."""
    checked = CheckedSql.require(checked, path="change", where="preview_change")
    if not runs_in_preview(checked):
        return ChangePreview(
            statement_type=checked.statement_type, ran=False, rows_affected=None, status=None, sample=None,
            before=None, objects=checked.tables, lock=checked.lock,
            notes=("Not run in the preview: schema and admin statements take their lock at once and may "
                   "rewrite a table, so this runs only after approval.",),
        )
    stmt = _statement(checked.sql)
    version = await _server_version(db)
    add_returning = _needs_returning(stmt, server_version=version)
    before_sql = _before_select(stmt)
    target = _target(stmt) if before_sql is not None else None
    notes: list[str] = []
    try:
        result = await db.run(
            lambda conn: _run_dml(conn, checked.sql, add_returning=add_returning, before_sql=before_sql,
                                  target=target),
            role=role, read_only=False, rollback=True, statement=checked.sql,
        )
    except PermissionDeniedError:
        if not add_returning:
            raise
        # RETURNING needs SELECT on the table; a role allowed only to INSERT/UPDATE gets the count alone.
        result = await db.run(
            lambda conn: _run_dml(conn, checked.sql, add_returning=False, before_sql=None, target=None),
            role=role, read_only=False, rollback=True, statement=checked.sql,
        )
        notes.append("Sample rows are not shown: your role may change the table but not read it.")
    if result.note:
        notes.append(result.note)
    rows: int | None
    if result.status is not None:
        rows = rows_from_status(result.status)
    elif checked.statement_type == "SelectStmt":
        rows = None
        notes.append(f"This SELECT changes data through its WITH part (or locks rows); it returns "
                     f"{result.returned} row{'s' if result.returned != 1 else ''}. Postgres reports no count "
                     "of the rows changed inside it.")
    else:
        rows = result.returned
    return ChangePreview(
        statement_type=checked.statement_type, ran=True, rows_affected=rows, status=result.status,
        sample=result.sample, before=result.before, objects=checked.tables, lock=checked.lock, notes=tuple(notes),
        keys=result.keys, set_columns=_set_columns(stmt),
    )


def _statement(sql: str) -> ast.Node:
    node = parse_sql(sql)[0].stmt
    assert isinstance(node, ast.Node)
    return node


def _needs_returning(stmt: ast.Node, *, server_version: int) -> bool:
    if isinstance(stmt, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
        return stmt.returningClause is None
    if isinstance(stmt, ast.MergeStmt):
        return server_version >= 170000 and stmt.returningClause is None
    return False


def _before_select(stmt: ast.Node) -> str | None:
    """``SELECT * FROM <relation> WHERE <same condition> LIMIT 5`` for an UPDATE that joins nothing."""
    if not isinstance(stmt, ast.UpdateStmt) or stmt.fromClause or stmt.withClause or stmt.relation is None:
        return None
    if isinstance(stmt.whereClause, ast.CurrentOfExpr):
        return None
    select = ast.SelectStmt(
        targetList=(ast.ResTarget(val=ast.ColumnRef(fields=(ast.A_Star(),))),),
        fromClause=(stmt.relation,), whereClause=stmt.whereClause,
        limitCount=ast.A_Const(isnull=False, val=ast.Integer(ival=BEFORE_ROWS)),
        limitOption=enums.LimitOption.LIMIT_OPTION_COUNT, op=enums.SetOperation.SETOP_NONE,
    )
    return str(RawStream()(select))


def _target(stmt: ast.Node) -> str | None:
    """The UPDATE's table as written (schema-qualified if it was), for looking up its primary key."""
    if not isinstance(stmt, ast.UpdateStmt) or stmt.relation is None:
        return None
    relation = ast.RangeVar(schemaname=stmt.relation.schemaname, relname=stmt.relation.relname, inh=True,
                            relpersistence="p")
    return str(RawStream()(relation))


def _set_columns(stmt: ast.Node) -> tuple[str, ...]:
    if not isinstance(stmt, ast.UpdateStmt):
        return ()
    return tuple(dict.fromkeys(t.name for t in stmt.targetList or () if isinstance(t, ast.ResTarget) and t.name))


_PRIMARY_KEY = """
SELECT coalesce(array_agg(a.attname ORDER BY k.ord), '{}') FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass($1) AND i.indisprimary"""


async def _server_version(db: PostgresDatabase) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        return int(conn.get_server_version().major) * 10000

    return await db.run(work, role=None, read_only=True)


@dataclass(frozen=True, slots=True)
class _DmlRun:
    status: str | None  # set when the statement returns no rows
    sample: ResultTable | None
    returned: int  # rows the statement returned (all of them counted, SAMPLE_ROWS kept)
    before: ResultTable | None
    note: str | None
    keys: tuple[str, ...] = ()


async def _run_dml(
    conn: asyncpg.Connection, sql: str, *, add_returning: bool, before_sql: str | None, target: str | None
) -> _DmlRun:
    """Run the statement (the caller rolls it back); count its rows server-side, keep a few."""
    before, note, keys = None, None, ()
    if before_sql is not None:
        try:
            async with conn.transaction():  # a savepoint: a failed look never spoils the preview itself
                if target is not None:
                    keys = tuple(await conn.fetchval(SQL_TAG + _PRIMARY_KEY, target))
                before = await _fetch_table(conn, before_sql)
        except asyncpg.QueryCanceledError:
            raise
        except asyncpg.PostgresError as exc:
            note = f"Rows before the change are not shown: {getattr(exc, 'message', type(exc).__name__)}."
    prepared = await conn.prepare(SQL_TAG + sql + ("\nRETURNING *" if add_returning else ""))
    attributes = prepared.get_attributes()
    columns = tuple(a.name for a in attributes)
    if not columns:
        await prepared.fetch()
        status = prepared.get_statusmsg()
        return _DmlRun(status=str(status) if status else None, sample=None, returned=0, before=before, note=note,
                       keys=keys)
    cursor = await prepared.cursor()
    records = await cursor.fetch(SAMPLE_ROWS)
    count = len(records)
    if count == SAMPLE_ROWS:  # count the rest without sending them: MOVE returns how many it skipped
        while (moved := await cursor.forward(_MOVE_STEP)) == _MOVE_STEP:
            count += moved
        count += moved
    sample = _table(columns, records, types=[a.type.name for a in attributes])
    return _DmlRun(status=None, sample=sample, returned=count, before=before, note=note, keys=keys)


async def _fetch_table(conn: asyncpg.Connection, sql: str) -> ResultTable:
    prepared = await conn.prepare(SQL_TAG + sql)
    attributes = prepared.get_attributes()
    return _table(tuple(a.name for a in attributes), await prepared.fetch(), types=[a.type.name for a in attributes])


def _table(columns: tuple[str, ...], records: list[asyncpg.Record], *, types: list[str] | None = None) -> ResultTable:
    return rows_to_table(columns, [tuple(r) for r in records], truncated=False, row_cap=SAMPLE_ROWS,
                         max_cell_chars=200, types=types)

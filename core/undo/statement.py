"""What an approved statement changes, read with pglast, and the SQL that keeps its rows.

The statement that runs is the approved text with ``RETURNING`` appended and nothing else: the text is
checked by parsing it again and comparing the tree, minus the RETURNING, with the approved statement's.
An UPDATE also reads its target rows first (same FROM and WHERE, ``FOR UPDATE OF`` the target), so the
rows as they were are kept; a DELETE returns them itself, an INSERT returns what it added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from core.db.postgres import quote_ident

Kind = Literal["insert", "update", "delete"]
IMAGE = "pgbot_image"
KEY = "pgbot_key"
_KINDS: dict[type[ast.Node], Kind] = {ast.InsertStmt: "insert", ast.UpdateStmt: "update", ast.DeleteStmt: "delete"}


@dataclass(frozen=True, slots=True)
class Target:
    """The one table a statement changes, and how the statement names its rows."""

    kind: Kind
    schema: str | None
    table: str
    ref: str  # the alias, else the table's name: what RETURNING and FOR UPDATE OF must say
    set_columns: tuple[str, ...]  # UPDATE: the columns it assigns
    stmt: ast.Node

    @property
    def name(self) -> str:
        """The table as written, quoted: resolved by Postgres with the role's search_path."""
        return (quote_ident(self.schema) + "." if self.schema else "") + quote_ident(self.table)


def target_of(sql: str) -> Target | str:
    """The statement's target, or why a change like it cannot be undone (for the approval card)."""
    try:
        stmt = parse_sql(sql)[0].stmt
    except (ParseError, IndexError):
        return "pgbot could not read the statement"
    kind = _KINDS.get(type(stmt)) if isinstance(stmt, ast.Node) else None
    if kind is None:
        if isinstance(stmt, ast.MergeStmt):
            return "MERGE cannot be undone (only INSERT, UPDATE and DELETE can)"
        return "only INSERT, UPDATE and DELETE can be undone"
    assert isinstance(stmt, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt)
    if stmt.returningClause is not None:
        return "it has a RETURNING clause of its own"
    if stmt.withClause is not None and any(not isinstance(cte.ctequery, ast.SelectStmt)
                                           for cte in stmt.withClause.ctes or ()):
        return "its WITH part changes data too"
    if isinstance(stmt, ast.InsertStmt) and stmt.onConflictClause is not None and (
            stmt.onConflictClause.action == enums.OnConflictAction.ONCONFLICT_UPDATE):
        return "INSERT … ON CONFLICT DO UPDATE changes existing rows that pgbot cannot tell from new ones"
    if isinstance(stmt, ast.UpdateStmt | ast.DeleteStmt) and isinstance(stmt.whereClause, ast.CurrentOfExpr):
        return "WHERE CURRENT OF names a cursor's row, not a key"
    relation = stmt.relation
    assert relation is not None and relation.relname is not None
    alias = relation.alias.aliasname if relation.alias is not None else None
    columns: tuple[str, ...] = ()
    if isinstance(stmt, ast.UpdateStmt):
        columns = tuple(t.name for t in stmt.targetList or () if isinstance(t, ast.ResTarget) and t.name)
    return Target(kind=kind, schema=relation.schemaname, table=relation.relname, ref=alias or relation.relname,
                  set_columns=columns, stmt=stmt)


def _returning(target: Target, key: tuple[str, ...]) -> str:
    ref = quote_ident(target.ref)
    keys = ", ".join(f"{ref}.{quote_ident(k)}" for k in key)
    return (f"pg_catalog.row_to_json({ref}.*)::text AS {IMAGE}, "
            f"pg_catalog.json_build_array({keys})::text AS {KEY}")


def with_returning(sql: str, target: Target, key: tuple[str, ...]) -> str | None:
    """The approved statement plus RETURNING (each row as JSON text, and its key); None when appending
    would change anything else (a trailing comment that swallows it, say)."""
    text = sql.rstrip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    candidate = f"{text}\nRETURNING {_returning(target, key)}"
    try:
        parsed = parse_sql(candidate)
    except ParseError:
        return None
    if len(parsed) != 1 or type(parsed[0].stmt) is not type(target.stmt):
        return None
    ours = parsed[0].stmt(skip_none=True)
    if not isinstance(ours, dict) or ours.pop("returningClause", None) is None:
        return None
    return candidate if ours == target.stmt(skip_none=True) else None


def rows_before(target: Target, key: tuple[str, ...], *, limit: int) -> str:
    """UPDATE only: its target rows as they are now, locked (same WITH, FROM and WHERE), at most ``limit``."""
    stmt = target.stmt
    assert isinstance(stmt, ast.UpdateStmt) and stmt.relation is not None
    head = parse_sql(f"SELECT {_returning(target, key)}")[0].stmt
    assert isinstance(head, ast.SelectStmt)
    targets = head.targetList
    select = ast.SelectStmt(
        targetList=targets, fromClause=(stmt.relation, *(stmt.fromClause or ())), whereClause=stmt.whereClause,
        withClause=stmt.withClause,
        lockingClause=(ast.LockingClause(
            lockedRels=(ast.RangeVar(relname=target.ref, inh=True, relpersistence="p"),),
            strength=enums.LockClauseStrength.LCS_FORUPDATE, waitPolicy=enums.LockWaitPolicy.LockWaitBlock),),
        limitCount=ast.A_Const(isnull=False, val=ast.Integer(ival=limit)),
        limitOption=enums.LimitOption.LIMIT_OPTION_COUNT, op=enums.SetOperation.SETOP_NONE,
    )
    return str(RawStream()(select))

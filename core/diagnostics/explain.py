"""EXPLAIN a statement safely and interpret it: reads with ANALYZE, changes only planned, never executed.

A read gets ``EXPLAIN (ANALYZE, BUFFERS)``: it runs, in a READ ONLY transaction as the asking role under
``statement_timeout``, exactly like any other read. A change (INSERT, UPDATE, DELETE, MERGE, CREATE TABLE AS)
is only planned: plain EXPLAIN does not execute, and it still runs in a READ ONLY transaction that is rolled
back, so even a mistake here cannot write. ANALYZE asked for a change is refused and plain EXPLAIN is used.

Planning opens every relation the statement names, and their indexes, so it waits behind an ACCESS EXCLUSIVE
lock: such a lock is looked up first (``pg_locks``, no wait) and reported at once instead of timing out.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg
from pglast import ast, parse_sql

from core.db.base import PostgresDatabase
from core.db.bounded_explain import explain_document
from core.db.postgres import SQL_TAG, quote_ident
from core.diagnostics.findings import Finding, render_findings
from core.diagnostics.locks import RelationLock, current_locks
from core.diagnostics.plan import Plan, interpret, parse_plan
from core.errors import GuardError, QueryTimeoutError
from core.sqlguard import CheckedSql, SqlGuard, StatementKind

EXPLAINABLE = frozenset({"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CreateTableAsStmt"})
_LABELS = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE",
           "CreateTableAsStmt": "CREATE TABLE AS"}


@dataclass(frozen=True, slots=True)
class ExplainReport:
    database: str
    sql: str
    plan: Plan
    summary: tuple[str, ...]
    findings: tuple[Finding, ...]
    refused_analyze: str | None = None  # why ANALYZE was not used although it was asked for

    def render(self) -> str:
        head = f"EXPLAIN {'ANALYZE ' if self.plan.analyzed else ''}on '{self.database}':"
        parts = [head]
        if self.refused_analyze:
            parts.append(self.refused_analyze)
        parts.extend(self.summary)
        body = render_findings(self.findings)
        if body:
            parts.append(body)
        return "\n".join(parts)


def classify_for_explain(guard: SqlGuard, sql: str) -> CheckedSql:
    """The statement, if EXPLAIN can plan it; else a GuardError saying why in plain words. A read comes back
    checked for the read path (its functions are checked against the catalog before it is planned or run), a
    change checked for the change path (only ever planned)."""
    classified = guard.classify(sql)
    if classified.kind is StatementKind.FORBIDDEN:
        raise GuardError(classified.reason or "pgbot refuses this statement.")
    if classified.statement_type == "ExplainStmt":
        raise GuardError("Send the query itself, without EXPLAIN: pgbot adds the EXPLAIN options.")
    if classified.statement_type not in EXPLAINABLE:
        raise GuardError(f"EXPLAIN cannot plan this kind of statement ("
                         f"{classified.statement_type.removesuffix('Stmt')}); it plans SELECT, INSERT, UPDATE, "
                         "DELETE, MERGE and CREATE TABLE AS.")
    # The same verdict (the guard keeps it), now as the proof the database takes.
    return guard.check_read(sql) if classified.kind is StatementKind.READ else guard.check_change(sql)


def has_parameters(sql: str) -> bool:
    return any(isinstance(node, ast.ParamRef) for node in _walk(parse_sql(sql)))


def relation_names(sql: str) -> list[str]:
    """Every relation the statement names, quoted for ``to_regclass`` (names of its CTEs left out)."""
    nodes = list(_walk(parse_sql(sql)))
    ctes = {n.ctename for n in nodes if isinstance(n, ast.CommonTableExpr)}
    names: set[str] = set()
    for node in nodes:
        if not isinstance(node, ast.RangeVar) or node.catalogname or not node.relname:
            continue
        if node.schemaname:
            names.add(f"{quote_ident(node.schemaname)}.{quote_ident(node.relname)}")
        elif node.relname not in ctes:
            names.add(quote_ident(node.relname))
    return sorted(names)


async def statement_oids(conn: asyncpg.Connection, sql: str) -> list[int]:
    """The oids of the relations ``sql`` names that exist (to_regclass: no lock, no error for a missing one)."""
    rows = await conn.fetch("SELECT to_regclass(name)::oid AS oid FROM unnest($1::text[]) AS name",
                            relation_names(sql))
    return [r["oid"] for r in rows if r["oid"] is not None]


async def locks_on_statement(conn: asyncpg.Connection, sql: str) -> list[RelationLock]:
    """ACCESS EXCLUSIVE locks (held or queued) on the relations ``sql`` names or their indexes: what planning
    it would wait for. Reads pg_locks and resolves names with to_regclass, neither of which waits."""
    locks = await current_locks(conn)
    return locks.on(await statement_oids(conn, sql)) if locks else []


def locked_error(database: str, locks: Sequence[RelationLock]) -> QueryTimeoutError:
    held = "; ".join(lock.describe() for lock in locks) or "a relation it reads was locked (lock_timeout)"
    return QueryTimeoutError(f"EXPLAIN on '{database}' cannot plan this query right now: {held}. Planning needs a "
                             "lock that waits behind that one; ask again once it is released.")


def _walk(value: object) -> Iterable[ast.Node]:
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            stack.extend(getattr(item, name) for name in item)
        elif isinstance(item, tuple | list):
            stack.extend(item)


async def plan_json(conn: asyncpg.Connection, sql: str, *, analyze: bool,
                    parameter_types: Sequence[str] = ()) -> str:
    """EXPLAIN on an open transaction; VERBOSE so scans name their schema. A statement with placeholders
    ($1 …, as pg_stat_statements records them) gets its generic plan, valid for any values. The document is
    refused past a size (PlanTooLargeError) in the database, before it reaches Python."""
    if has_parameters(sql):
        return (await generic_plan(conn, sql, parameter_types))[0]
    options = "ANALYZE, BUFFERS, VERBOSE, FORMAT JSON" if analyze else "VERBOSE, FORMAT JSON"
    return await explain_document(conn, f"EXPLAIN ({options}) {sql}")


async def generic_plan(conn: asyncpg.Connection, sql: str,
                       parameter_types: Sequence[str] = ()) -> tuple[str, list[str]]:
    """The plan for any parameter values, and the parameters' types: PREPARE under
    ``plan_cache_mode = force_generic_plan``, then EXPLAIN EXECUTE with NULLs (the values are never used by
    a generic plan). Works on every supported version, unlike EXPLAIN (GENERIC_PLAN) (PostgreSQL 16+).
    Prepared statements belong to the session, so it is always deallocated before the connection is reused."""
    name = f"pgbot_generic_{secrets.token_hex(6)}"
    declared = f"({', '.join(parameter_types)})" if parameter_types else ""
    prepared = False
    try:
        async with conn.transaction():  # a savepoint: a failure still lets DEALLOCATE below run
            await conn.execute("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)")
            await conn.execute(f"{SQL_TAG}PREPARE {name}{declared} AS {sql}")
            prepared = True
            types: list[str] = await conn.fetchval(
                "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = $1", name)
            nulls = ", ".join("NULL" for _ in types)
            document = await explain_document(conn, f"EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {name}({nulls})")
    finally:
        if prepared:
            await conn.execute(f"DEALLOCATE {name}")
    return document, types


async def table_rows(conn: asyncpg.Connection, relations: Iterable[str]) -> dict[str, float]:
    """reltuples of each ``schema.table`` named in a plan (what "large table" is judged by)."""
    names = sorted(relations)
    if not names:
        return {}
    rows = await conn.fetch(
        "SELECT n.nspname || '.' || c.relname AS name, greatest(c.reltuples, 0)::float8 AS rows "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname || '.' || c.relname = ANY($1::text[])", names)
    return {r["name"]: r["rows"] for r in rows}


async def explain(db: PostgresDatabase, guard: SqlGuard, sql: str, *, role: str | None, analyze: bool) -> ExplainReport:
    """EXPLAIN ``sql`` as ``role``; ANALYZE only for reads. Raises GuardError for what cannot be planned."""
    checked = classify_for_explain(guard, sql)
    refused: str | None = None
    run_analyze = analyze
    if has_parameters(checked.sql):
        refused = ("This query has placeholders ($1 …), so it cannot run without values: here is its generic plan "
                   "(the plan for any values; nothing ran). Put example values in to measure real times.")
        run_analyze = False
    elif analyze and checked.kind is not StatementKind.READ:
        label = _LABELS.get(checked.statement_type, checked.statement_type)
        refused = (f"EXPLAIN ANALYZE would actually run this {label}, so pgbot refuses it: it never executes a "
                   "change to explain it. Here is the plain EXPLAIN instead (the planner's estimates; nothing ran).")
        run_analyze = False

    async def work(conn: asyncpg.Connection) -> tuple[str, dict[str, float]]:
        locked = await locks_on_statement(conn, checked.sql)
        if locked:
            raise locked_error(db.name, locked)
        try:
            async with conn.transaction():  # a savepoint: after a lock timeout the locks can still be read
                document = await plan_json(conn, checked.sql, analyze=run_analyze)
        except asyncpg.LockNotAvailableError:  # taken since the look above, or on a table behind a view
            raise locked_error(db.name, (await current_locks(conn)).reported()) from None
        return document, await table_rows(conn, parse_plan(document).relations())

    # Only a read may run (ANALYZE): its functions pass the read path's catalog check first.
    guarded = checked if checked.path == "read" else None
    document, sizes = await db.run(work, role=role, read_only=True, rollback=True, guarded=guarded)
    plan = parse_plan(document)
    summary, findings = interpret(plan, table_rows=sizes)
    return ExplainReport(database=db.name, sql=checked.sql, plan=plan, summary=tuple(summary),
                         findings=tuple(findings), refused_analyze=refused)

"""Performance tools: EXPLAIN in plain words, the health check, index advice, and proposing an index build.

The first three only read. ``propose_index`` returns a :class:`PendingAction` whose approved run is the
``create_index`` executor (CREATE INDEX CONCURRENTLY with progress, :mod:`core.diagnostics.index_build`).
"""

from __future__ import annotations

import re
import time

import asyncpg

from core.approvals import PendingAction, action_hash, role_label
from core.db.postgres import quote_ident
from core.diagnostics.explain import explain
from core.diagnostics.findings import number, size
from core.diagnostics.health import health_check as run_health_check
from core.diagnostics.index_build import OPERATION, create_index
from core.diagnostics.index_catalog import TableFacts, table_facts
from core.diagnostics.indexes import advise, top_statements
from core.errors import DatabaseError, GuardError, ModelHint, PermissionDeniedError, PgbotError
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool

__all__ = ["advise_indexes", "create_index", "explain_query", "health_check", "propose_index"]
_FIXABLE = ("22", "42")
MAX_INDEX_COLUMNS = 8


def _hint_for(exc: DatabaseError, sql: str) -> ModelHint | None:
    state = getattr(exc.__cause__, "sqlstate", None)
    if isinstance(state, str) and state[:2] in _FIXABLE and not isinstance(exc, PermissionDeniedError):
        return ModelHint(f"Postgres could not plan it: {exc.user_message}\nSQL was: {sql}")
    return None


@tool(kind=ToolKind.READ)
async def explain_query(ctx: ToolContext, sql: str, analyze: bool = True) -> ToolOutput:
    """Explain why a query is slow: runs EXPLAIN (ANALYZE, BUFFERS) on a read query and describes the plan
    in plain words (slowest steps, row misestimates, sequential scans on large tables, sorts spilling to
    disk). Use this, not run_query, whenever the user asks why a query is slow, how it runs, or for its plan.
    For INSERT/UPDATE/DELETE it only plans (never executes) the statement.

    Args:
        sql: the one statement to explain, without the EXPLAIN keyword
        analyze: run the query to measure real times (reads only; ignored for changes)
    """
    try:
        report = await explain(ctx.database, ctx.guard, sql, role=ctx.actor.role, analyze=analyze)
    except GuardError as exc:
        raise ModelHint(f"Refused: {exc.user_message}") from None
    except DatabaseError as exc:
        raise _hint_for(exc, sql) or exc from None
    options = "ANALYZE, BUFFERS, VERBOSE, FORMAT JSON" if report.plan.analyzed else "VERBOSE, FORMAT JSON"
    ctx.log.info("query_explained", analyzed=report.plan.analyzed, findings=len(report.findings))
    return ToolOutput(text=report.render(), sql=(f"EXPLAIN ({options}) {report.sql}",))


@tool(kind=ToolKind.READ)
async def health_check(ctx: ToolContext) -> ToolOutput:
    """Check the current database's health: cache hit ratio, table and index bloat, dead rows and stale
    vacuum/analyze, long-running queries, blocked and blocking sessions, connection usage, unused and
    duplicate indexes, and the top queries from pg_stat_statements. Use this when the user asks whether the
    database is healthy, why everything is slow, what is blocking, or for a check-up. Read-only.
    """
    report = await run_health_check(ctx.database, role=ctx.actor.role)
    ctx.log.info("health_checked", problems=sorted(report.checks()))
    return ToolOutput(text=report.render())


@tool(kind=ToolKind.READ)
async def advise_indexes(ctx: ToolContext, sql: str | None = None) -> ToolOutput:
    """Recommend indexes for a query and measure how much each would help (HypoPG hypothetical indexes when
    installed, else estimates), and report existing unused or duplicate indexes on its tables. Use this when
    the user asks which indexes would help, or how to make a query faster. Nothing is built: to build one,
    call propose_index afterwards. Without sql, the top queries of pg_stat_statements are used.

    Args:
        sql: the slow query (default: the top queries recorded by pg_stat_statements)
    """
    queries = [sql] if sql else await _top_queries(ctx)
    parts: list[str] = []
    for query in queries:
        try:
            advice = await advise(ctx.database, ctx.guard, query, role=ctx.actor.role)
        except GuardError as exc:
            if sql:
                raise ModelHint(f"Refused: {exc.user_message}") from None
            parts.append(f"Skipped {' '.join(query.split())[:120]}: {exc.user_message}")
            continue
        except DatabaseError as exc:
            hint = _hint_for(exc, query)
            if sql and hint is not None:
                raise hint from None
            if sql:
                raise
            parts.append(f"Skipped {' '.join(query.split())[:120]}: {exc.user_message}")
            continue
        parts.append(advice.render() if sql else f"Query: {' '.join(query.split())[:200]}\n{advice.render()}")
    ctx.log.info("indexes_advised", queries=len(queries))
    return ToolOutput(text="\n\n".join(parts))


async def _top_queries(ctx: ToolContext) -> list[str]:
    try:
        return await top_statements(ctx.database, role=ctx.actor.role)
    except PgbotError as exc:
        raise ModelHint(f"{exc.user_message} Ask the user for the slow query and pass it as sql.") from None


@tool(kind=ToolKind.DDL)
async def propose_index(ctx: ToolContext, table: str, columns: list[str], unique: bool = False) -> ToolOutput:
    """Propose building one index with CREATE INDEX CONCURRENTLY (reads and writes continue while it builds).
    Nothing runs now: it waits for Approve / Reject, then builds with progress updates. Use this to create an
    index, e.g. one that advise_indexes recommended, rather than propose_change.

    Args:
        table: the table, optionally schema-qualified (e.g. public.orders)
        columns: the index's columns in order (equality-filtered columns first)
        unique: a UNIQUE index (the build fails if duplicates exist)
    """
    if not columns or len(columns) > MAX_INDEX_COLUMNS or any(not c or len(c) > 63 for c in columns):
        raise ModelHint(f"Give 1 to {MAX_INDEX_COLUMNS} column names of the table.")
    if len(set(columns)) != len(columns):
        raise ModelHint("A column appears twice in the index; list each once.")

    async def work(conn: asyncpg.Connection) -> tuple[TableFacts | None, bool, float, str]:
        facts = await table_facts(conn, table)
        if facts is None:
            return None, False, 0.0, ""
        owner = await conn.fetchval("SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
                                    "WHERE oid = $1", facts.oid)
        bytes_ = await conn.fetchval("SELECT pg_relation_size($1::oid)::float8", facts.oid)
        name = await _free_name(conn, facts, columns)
        return facts, bool(owner), float(bytes_ or 0.0), name

    try:
        facts, owner, table_bytes, name = await ctx.database.run(work, role=ctx.actor.role, read_only=True)
    except DatabaseError as exc:
        raise _hint_for(exc, table) or exc from None
    if facts is None:
        raise ModelHint(f"There is no table named {table[:100]!r} visible to you; check the name with list_tables.")
    missing = [c for c in columns if c not in facts.columns]
    if missing:
        raise ModelHint(f"{facts.name} has no column {', '.join(missing)}; its columns are "
                        f"{', '.join(facts.columns)}.")
    same = next((ix for ix in facts.indexes if ix.covers(columns) and len(ix.columns) == len(columns)
                 and (ix.unique or not unique)), None)
    if same is not None:
        return ToolOutput(text=f"{facts.name} already has index {same.name} on ({', '.join(columns)}): "
                               f"{same.definition}. Nothing to build.")
    if not owner:
        raise PermissionDeniedError(f"Postgres lets only the owner of {facts.name} create indexes on it, and "
                                    f"{role_label(ctx.actor.role)} does not own it, so this cannot be proposed.")
    schema, _, relname = facts.name.partition(".")
    sql = (f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY {quote_ident(name)} ON "
           f"{quote_ident(schema)}.{quote_ident(relname)} ({', '.join(quote_ident(c) for c in columns)})")
    ctx.guard.check_change(sql)
    params = {"schema": schema, "name": name, "table": facts.name, "columns": ",".join(columns),
              "unique": "true" if unique else "false"}
    now = time.time()
    action = PendingAction(
        database=ctx.database.name, thread_key=ctx.thread_key, requested_by=ctx.actor.identity,
        role=ctx.actor.role, sql=sql, sql_hash=action_hash(sql, OPERATION, params), kind="ddl",
        statement_type="IndexStmt", summary=f"CREATE INDEX CONCURRENTLY {name} on {facts.name}",
        tables=(facts.name,), lock="SHARE UPDATE EXCLUSIVE", outside_transaction=True, operation=OPERATION,
        params=params, created_at=now, expires_at=now + ctx.settings.approvals.expiry_s,
    )
    text = "\n".join([
        f"This builds index {schema}.{name} on {facts.name} ({', '.join(columns)}): ~{number(facts.rows)} rows, "
        f"{size(table_bytes)} of table to read. It will run as {role_label(ctx.actor.role)} on "
        f"'{ctx.database.name}'.",
        "Lock: SHARE UPDATE EXCLUSIVE on the table: reads and writes continue while it builds; other schema "
        "changes and VACUUM on it wait. CONCURRENTLY takes longer than a plain build and first waits for "
        "transactions already writing to the table.",
        "It cannot run inside a transaction; progress is posted while it builds, and if it fails, the INVALID "
        "index it leaves is dropped.",
        f"Nothing has run yet: change {action.id} waits for Approve or Reject.",
    ])
    ctx.log.info("index_proposed", action_id=action.id, table=facts.name, columns=len(columns))
    return ToolOutput(text=text, pending=action)


async def _free_name(conn: asyncpg.Connection, facts: TableFacts, columns: list[str]) -> str:
    """``<table>_<columns>_idx`` cut to Postgres's 63 bytes, with a number added if the name is taken."""
    schema, _, relname = facts.name.partition(".")
    base = re.sub(r"[^a-z0-9_]+", "_", f"{relname}_{'_'.join(columns)}".lower()).strip("_")[:55] or "idx"
    for n in range(100):
        name = f"{base}_idx" if n == 0 else f"{base}_idx{n}"
        taken = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{quote_ident(schema)}.{quote_ident(name)}")
        if not taken:
            return name
    raise ModelHint("Could not find a free index name; choose other columns.")

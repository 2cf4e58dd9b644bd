"""Performance tools: EXPLAIN in plain words, the health check, index advice, and proposing an index build.

The first three only read. ``propose_index`` returns a :class:`PendingAction` whose approved run is the
``create_index`` executor (CREATE INDEX CONCURRENTLY with progress, :mod:`core.diagnostics.index_build`).
"""

from __future__ import annotations

from core.db.base import PostgresDatabase
from core.diagnostics.explain import explain
from core.diagnostics.health import health_check as run_health_check
from core.diagnostics.index_build import create_index
from core.diagnostics.index_proposal import Requester, propose_index_build
from core.diagnostics.indexes import advise, top_statements
from core.errors import (
    DatabaseError,
    GuardError,
    IndexRequestError,
    ModelHint,
    PermissionDeniedError,
    PgbotError,
    refused_as_hint,
)
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool

__all__ = ["advise_indexes", "create_index", "explain_query", "health_check", "propose_index"]
_FIXABLE = ("22", "42")


def _hint_for(exc: DatabaseError, sql: str) -> ModelHint | None:
    state = getattr(exc.__cause__, "sqlstate", None)
    if isinstance(state, str) and state[:2] in _FIXABLE and not isinstance(exc, PermissionDeniedError):
        return ModelHint(f"Postgres could not plan it: {exc.user_message}\nSQL was: {sql}")
    return None


@tool(kind=ToolKind.READ)
async def explain_query(ctx: ToolContext, sql: str, analyze: bool = True) -> ToolOutput:
    """Explain how a query runs and why it is slow, in plain words (EXPLAIN ANALYZE for reads; changes are only
    planned).

    Args:
        sql: the statement, without EXPLAIN
        analyze: measure real times (reads only)
    """
    db = ctx.postgres()
    try:
        with refused_as_hint():
            report = await explain(db, ctx.guard, sql, role=ctx.actor.role, analyze=analyze)
    except DatabaseError as exc:
        raise _hint_for(exc, sql) or exc from None
    options = "ANALYZE, BUFFERS, VERBOSE, FORMAT JSON" if report.plan.analyzed else "VERBOSE, FORMAT JSON"
    ctx.log.info("query_explained", analyzed=report.plan.analyzed, findings=len(report.findings))
    return ToolOutput(text=report.render(), sql=(f"EXPLAIN ({options}) {report.sql}",))


@tool(kind=ToolKind.READ)
async def health_check(ctx: ToolContext) -> ToolOutput:
    """Check the database's health: cache hits, bloat, vacuum, long and blocked queries, connections, unused indexes,
    top queries."""
    report = await run_health_check(ctx.postgres(), role=ctx.actor.role)
    ctx.log.info("health_checked", problems=sorted(report.checks()))
    return ToolOutput(text=report.render())


@tool(kind=ToolKind.READ)
async def advise_indexes(ctx: ToolContext, sql: str | None = None) -> ToolOutput:
    """Recommend indexes for a query, measured with hypothetical indexes. Builds nothing (propose_index does).

    Args:
        sql: the slow query (default: the top queries of pg_stat_statements)
    """
    db = ctx.postgres()
    queries = [sql] if sql else await _top_queries(ctx, db)
    parts: list[str] = []
    for query in queries:
        try:
            advice = await advise(db, ctx.guard, query, role=ctx.actor.role)
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


async def _top_queries(ctx: ToolContext, db: PostgresDatabase) -> list[str]:
    try:
        return await top_statements(db, role=ctx.actor.role, max_chars=ctx.guard.max_sql_chars)
    except PgbotError as exc:
        raise ModelHint(f"{exc.user_message} Ask the user for the slow query and pass it as sql.") from None


@tool(kind=ToolKind.DDL)
async def propose_index(ctx: ToolContext, table: str, columns: list[str], unique: bool = False) -> ToolOutput:
    """Propose building one index (CREATE INDEX CONCURRENTLY); it runs after a person approves.

    Args:
        table: table name, optionally schema-qualified
        columns: the columns in order, equality-filtered first
        unique: a UNIQUE index
    """
    db = ctx.postgres()
    requester = Requester(identity=ctx.actor.identity, role=ctx.actor.role, thread_key=ctx.thread_key,
                          groups=ctx.actor.groups)
    try:
        proposal = await propose_index_build(db, table=table, columns=columns, unique=unique,
                                             requester=requester, expiry_s=ctx.settings.approvals.expiry_s)
    except IndexRequestError as exc:
        raise ModelHint(exc.user_message) from None
    if proposal.action is None:
        return ToolOutput(text=proposal.text)
    action = proposal.action
    ctx.log.info("index_proposed", action_id=action.id, table=action.tables[0], columns=len(columns))
    return ToolOutput(text=f"{proposal.text}\nNothing has run yet: change {action.id} waits for Approve or Reject.",
                      pause=action)

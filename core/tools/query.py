"""The read path: one guarded SELECT in a READ ONLY transaction as the user's role."""

from __future__ import annotations

from core.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    GuardError,
    ModelHint,
    PermissionDeniedError,
    QueryTimeoutError,
)
from core.explain_check import explain_first, retry_hint
from core.tools.format import table_for_model
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool


@tool(kind=ToolKind.READ, always=True)
async def run_query(ctx: ToolContext, sql: str) -> ToolOutput:
    """Run one read-only SQL statement (SELECT, WITH, VALUES, SHOW, EXPLAIN) and return its rows.

    Args:
        sql: one read-only PostgreSQL statement
    """
    try:
        checked = ctx.guard.check_read(sql)
    except GuardError as exc:
        raise ModelHint(f"Refused: {exc.user_message}") from None
    if ctx.settings.accuracy.explain_first:
        await explain_first(ctx.database, role=ctx.actor.role, sql=checked.sql, statement_type=checked.statement_type)
    try:
        result = await ctx.database.fetch(checked.sql, role=ctx.actor.role)
    except (PermissionDeniedError, QueryTimeoutError, DatabaseUnavailableError):
        raise  # the model cannot fix these: the user must see them as they are
    except DatabaseError as exc:
        hint = retry_hint(exc.user_message)
        raise ModelHint(
            f"Postgres error: {exc.user_message}" + (f"\n{hint}" if hint else "") + f"\nSQL was: {checked.sql}"
        ) from None
    table = result.to_table(max_cell_chars=ctx.database.settings.max_cell_chars)
    ctx.log.info("query_ran", rows=table.row_count, truncated=table.truncated, ms=round(result.duration_ms, 1))
    return ToolOutput(text=table_for_model(table), sql=(checked.sql,), table=table)

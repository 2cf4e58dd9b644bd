"""The read path: one guarded SELECT in a READ ONLY transaction as the user's role.

Small models send changes here too. A change is not refused but handed to ``propose_change`` (a
:class:`HandOff`), so it becomes the same held proposal, with the same guard, preview and approval;
where that tool is switched off, the refusal says so. Forbidden statements are refused either way.
"""

from __future__ import annotations

from core.db.explain_check import explain_first
from core.db.fix_hints import query_failed
from core.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    GuardError,
    HandOff,
    ModelHint,
    PermissionDeniedError,
    QueryFailed,
    QueryTimeoutError,
    refused_as_hint,
)
from core.sqlguard import SqlGuard, StatementKind
from core.tools.format import table_for_model
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool


@tool(kind=ToolKind.READ, always=True)
async def run_query(ctx: ToolContext, sql: str) -> ToolOutput:
    """Run one read-only SQL statement (SELECT, WITH, VALUES, SHOW, EXPLAIN) and return its rows.

    Args:
        sql: one read-only PostgreSQL statement
    """
    try:
        checked = ctx.guard.check_read(sql, allowed_functions=ctx.database.settings.allowed_functions)
    except GuardError as exc:
        kind = _kind(ctx.guard, sql)
        if kind in _CHANGE_KINDS:
            raise HandOff(
                tool=CHANGE_TOOL, arguments={"sql": sql},
                note=("Held for approval: run_query only reads, so pgbot turned this change into a proposal, as "
                      f"{CHANGE_TOOL} does (call {CHANGE_TOOL} for changes)."),
                hint=(f"Refused: {exc.user_message} Changes are switched off in this pgbot ({CHANGE_TOOL} is not "
                      "available), so this cannot be done from chat."),  # read by the model, or a person in /sql
            ) from None
        if kind is None:  # unparseable, or several statements: the SQL needs rewriting
            raise QueryFailed(f"Refused: {exc.user_message}") from None
        raise ModelHint(f"Refused: {exc.user_message}") from None
    if ctx.settings.accuracy.explain_first:
        await explain_first(ctx.database, role=ctx.actor.role, checked=checked)
    try:
        with refused_as_hint():  # a function the catalog check refused
            result = await ctx.database.fetch(checked, role=ctx.actor.role)
    except (PermissionDeniedError, QueryTimeoutError, DatabaseUnavailableError):
        raise  # the model cannot fix these: the user must see them as they are
    except DatabaseError as exc:
        raise await query_failed(exc, db=ctx.database, role=ctx.actor.role, sql=checked.sql, tables=checked.tables,
                                 planning=False) from None
    table = result.to_table(max_cell_chars=ctx.database.settings.max_cell_chars)
    ctx.log.info("query_ran", rows=table.row_count, truncated=table.truncated, ms=round(result.duration_ms, 1))
    return ToolOutput(text=table_for_model(table), sql=(checked.sql,), table=table)


CHANGE_TOOL = "propose_change"
_CHANGE_KINDS = (StatementKind.WRITE, StatementKind.DDL, StatementKind.ADMIN)


def _kind(guard: SqlGuard, sql: str) -> StatementKind | None:
    """What the refused statement is; None when it does not parse or holds several statements."""
    try:
        return guard.classify(sql).kind
    except GuardError:
        return None

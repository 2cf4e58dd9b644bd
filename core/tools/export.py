"""The export tool: a whole result (no row cap) as a CSV file, streamed, never in memory; the adapter delivers it
(an upload in Slack and Discord), so neither the model nor the user ever sees a path on pgbot's host."""

from __future__ import annotations

from core.errors import DatabaseError, ModelHint, PermissionDeniedError, QueryTimeoutError, refused_as_hint
from core.tools.exporting import export_for
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool


@tool(kind=ToolKind.READ)
async def export_csv(ctx: ToolContext, sql: str) -> ToolOutput:
    """Export the full result of a read-only query (no row cap) as a CSV file attached to the answer, when the user
    asks for a file, a download or all rows.

    Args:
        sql: one read-only query that returns rows
    """
    try:
        with refused_as_hint():
            result = await export_for(ctx, sql)
    except (PermissionDeniedError, QueryTimeoutError):
        raise  # the model cannot fix these: the user must see them as they are
    except DatabaseError as exc:
        raise ModelHint(f"Postgres error: {exc.user_message}\nSQL was: {sql}") from None
    return ToolOutput(text=result.summary() + "; pgbot attaches the file to your answer.", sql=(result.sql,),
                      export=result.file())

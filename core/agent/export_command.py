"""``/export [QUERY]``: the whole result as a CSV file, through the same path as the ``export_csv`` tool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import PgbotError
from core.messages import Reply, ReplyKind
from core.tools.exporting import export_for

if TYPE_CHECKING:
    from core.agent.host import CommandHost as Agent  # the agent as commands see it; the loop imports this
    from core.tools.registry import ToolContext


async def export_command(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    """``/export SELECT …``: the whole result as a CSV file (uploaded in chat; its path in the terminal).

    With no SQL it exports the full result of the thread's last answer (whose chat table was capped). That
    answer may be someone else's: its SQL runs again, as the role of whoever sent /export (never a copy of
    rows read under another role), and only on the database it was written for.
    """
    if not arg:
        last = await agent.last_answer(ctx.thread_key)
        if last is None or not last.sql:
            raise PgbotError("Usage: /export SELECT …  (or /export alone after an answer: its full result as CSV)")
        if last.database != ctx.database.name:
            raise PgbotError(f"The last answer in this thread was on database '{last.database}', and this thread "
                             f"now uses '{ctx.database.name}'. Use /export SELECT … to export from "
                             f"'{ctx.database.name}'.")
        arg = last.table_sql or last.sql[-1]
    result = await export_for(ctx, arg)
    return Reply(
        kind=ReplyKind.RESULT, text=result.summary() + ".", sql=(result.sql,), database=ctx.database.name,
        export=result.file(), role=ctx.actor.role,
    )

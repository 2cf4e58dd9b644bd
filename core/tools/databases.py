"""Which databases exist, and switching the thread to another one."""

from __future__ import annotations

from core.errors import ModelHint, UnknownDatabaseError
from core.messages import ResultTable
from core.permissions import resolve_role
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool


@tool(kind=ToolKind.READ, always=True)
async def list_databases(ctx: ToolContext) -> ToolOutput:
    """List the configured databases and which one this thread uses."""
    rows = []
    for name in ctx.databases.names:
        settings = ctx.databases.get(name).settings
        current = "yes" if name == ctx.database.name else ""
        rows.append((name, current, settings.description))
    text = "\n".join(f"{n}{' (current)' if c else ''}{': ' + d if d else ''}" for n, c, d in rows)
    return ToolOutput(text=text, table=ResultTable(columns=("database", "current", "description"), rows=tuple(rows)))


@tool(kind=ToolKind.READ, always=True)
async def switch_database(ctx: ToolContext, name: str) -> ToolOutput:
    """Switch this thread to another configured database.

    Args:
        name: a name from list_databases
    """
    try:
        target = ctx.databases.get(name)
    except UnknownDatabaseError as exc:
        raise ModelHint(exc.user_message) from None
    resolve_role(database=target.name, settings=target.settings, identity=ctx.actor.identity,
                 groups=ctx.actor.groups)
    await ctx.store.set_database(ctx.thread_key, target.name)
    return ToolOutput(text=f"This thread now uses database '{target.name}'.", switched_database=target.name)

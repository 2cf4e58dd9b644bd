"""more_tools: the model asks for the tools that are not offered on every call (core.tools.toolsets)."""

from __future__ import annotations

from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool

MORE_TOOLS = "more_tools"


# Small models call it with the tool and table they are after ({"tool": "describe_table", "table": "orders"});
# refusing those arguments made one retry the same call until the turn gave up.
@tool(kind=ToolKind.READ, always=True, extra_arguments=True)
async def more_tools(ctx: ToolContext) -> ToolOutput:
    """Offer the tools for changes, backups, migrations, diagnostics, indexes and CSV export."""
    return ToolOutput(text="More tools are offered now (changes, backups, migrations, diagnostics, indexes, "
                           "CSV export). Call the one the request needs.", more_tools=True)

"""Slash commands for diagnostics (no model needed): ``/explain SQL``, ``/indexes [SQL]``, ``/health``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import PgbotError
from core.messages import Reply, ReplyKind
from core.tools.registry import ToolContext

if TYPE_CHECKING:
    from core.agent.host import CommandHost as Agent  # the agent as commands see it; the loop imports this

HELP = """  /explain QUERY       EXPLAIN ANALYZE in plain words (changes are only planned, never run)
  /indexes [QUERY]     indexes that would help, with the cost drop (default: pg_stat_statements' top queries)
  /health              health check: blocking, long queries, bloat, vacuum, unused indexes, top queries"""


async def _run(agent: Agent, ctx: ToolContext, name: str, arguments: dict[str, object]) -> Reply:
    output = await agent.run_tool(ctx, name, arguments)
    return Reply(kind=ReplyKind.RESULT, text=output.text, sql=output.sql, database=ctx.database.name)


async def explain_command(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    if not arg:
        raise PgbotError("Usage: /explain SELECT …")
    return await _run(agent, ctx, "explain_query", {"sql": arg, "analyze": True})


async def indexes_command(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    return await _run(agent, ctx, "advise_indexes", {"sql": arg or None})


async def health_command(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    return await _run(agent, ctx, "health_check", {})

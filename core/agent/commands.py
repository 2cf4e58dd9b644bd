"""Slash commands: direct tool calls that need no model (``/tables``, ``/sql SELECT …``)."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from core.agent.chart_actions import chart_command
from core.agent.diagnostics_commands import HELP as DIAGNOSTICS_HELP
from core.agent.diagnostics_commands import explain_command, health_command, indexes_command
from core.agent.export_command import export_command
from core.agent.schedule_commands import HELP as SCHEDULES_HELP
from core.agent.schedule_commands import schedule_command, schedules_command
from core.agent.undo_actions import undo_command
from core.errors import ModelHint, PgbotError
from core.messages import Reply, ReplyKind
from core.tools.registry import ToolContext, ToolOutput

if TYPE_CHECKING:
    from core.agent.host import CommandHost as Agent  # the agent as commands see it; the loop imports this

HELP = """Ask a question in plain English, or use a command:
  /tables [schema]     list the tables you can read
  /describe TABLE      columns, keys, indexes and comments of a table
  /sql STATEMENT       run one read-only SQL statement as you
  /export [QUERY]      the full result as a CSV file (alone: of the last answer); path, rows, size
  /chart [KIND] [QUERY]  a chart (line, bar or scatter) of the query, or alone: of the last answer
  /edit                edit the last answer's SQL and run it again (terminal; in chat: the Edit SQL button)
  /db [NAME]           show or switch this thread's database
  /dbs                 list the configured databases
  /good, /bad          👍 or 👎 on this thread's last answer (👍 pairs teach pgbot)
  /undo [ID]           undo an approved change (alone: this thread's newest); the undo is approved like a change
""" + DIAGNOSTICS_HELP + "\n" + SCHEDULES_HELP + """
  /help                this text"""

Handler = Callable[["Agent", ToolContext, str], Awaitable[Reply]]


async def run_command(agent: Agent, ctx: ToolContext, text: str) -> Reply:
    name, _, arg = text[1:].partition(" ")
    handler = COMMANDS.get(name.lower())
    if handler is None:
        return Reply(kind=ReplyKind.ERROR, text=f"Unknown command /{name[:40]}.\n{HELP}", database=ctx.database.name)
    try:
        return await handler(agent, ctx, arg.strip())
    except ModelHint as hint:  # no model here: the hint is meant for the person
        raise PgbotError(hint.hint) from None


async def _tool(agent: Agent, ctx: ToolContext, tool_name: str, arguments: dict[str, object]) -> ToolOutput:
    return await agent.run_tool(ctx, tool_name, arguments)


def _result(ctx: ToolContext, output: ToolOutput, text: str | None = None) -> Reply:
    return Reply(
        kind=ReplyKind.RESULT, text=text if text is not None else output.text, sql=output.sql, table=output.table,
        database=ctx.database.name, role=ctx.actor.role,
    )


async def _help(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    return Reply(kind=ReplyKind.INFO, text=HELP, database=ctx.database.name)


async def _tables(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    output = await _tool(agent, ctx, "list_tables", {"schema_name": arg or None})
    if output.table is None:
        return _result(ctx, output)
    return _result(ctx, output, text=f"Tables in {ctx.database.name}" + (f" (schema {arg})" if arg else "") + ":")


async def _describe(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    if not arg:
        raise PgbotError("Usage: /describe TABLE")
    output = await _tool(agent, ctx, "describe_table", {"table": arg})
    return Reply(kind=ReplyKind.RESULT, text=output.text, database=ctx.database.name)


async def _sql(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    if not arg:
        raise PgbotError("Usage: /sql SELECT …")
    if agent.needs_approval(arg):
        output = await _tool(agent, ctx, "propose_change", {"sql": arg})
        return await agent.pending_reply(ctx, output)
    output = await _tool(agent, ctx, "run_query", {"sql": arg})
    table = output.table
    summary = f"{table.row_count} row{'s' if table.row_count != 1 else ''}" if table else ""
    if table is not None and table.truncated:
        summary += f" (cut at {table.row_cap}; more rows exist)"
    return _result(ctx, output, text=summary)


EDIT_HERE = ("To edit an answer's SQL here, click Edit SQL under the answer; SQL too long for that window runs "
             "with /sql. In the terminal, /edit opens your editor on the last answer's SQL.")


async def _edit(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    """``/edit`` reached core: the terminal opens an editor before sending anything, chat has its button."""
    return Reply(kind=ReplyKind.INFO, text=EDIT_HERE, database=ctx.database.name)


async def _db(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    if not arg:
        return Reply(kind=ReplyKind.INFO, text=f"This thread uses database '{ctx.database.name}'.",
                     database=ctx.database.name)
    output = await _tool(agent, ctx, "switch_database", {"name": shlex.split(arg)[0] if arg else arg})
    return Reply(kind=ReplyKind.INFO, text=output.text, database=output.switched_database)


async def _dbs(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    return _result(ctx, await _tool(agent, ctx, "list_databases", {}), text="Configured databases:")


async def _vote(agent: Agent, ctx: ToolContext, helpful: bool) -> Reply:
    """The terminal's 👍/👎: a vote on the thread's last answer, through the same path as chat buttons."""
    last = await agent.last_answer(ctx.thread_key)
    if last is None:
        return Reply(kind=ReplyKind.INFO, text="There is no answer in this thread to rate yet.",
                     database=ctx.database.name)
    return await agent.feedback(answer_id=last.answer_id, user=ctx.actor.identity, helpful=helpful,
                                groups=ctx.actor.groups)


async def _good(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    return await _vote(agent, ctx, True)


async def _bad(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    return await _vote(agent, ctx, False)


COMMANDS: dict[str, Handler] = {
    "help": _help,
    "tables": _tables,
    "describe": _describe,
    "sql": _sql,
    "db": _db,
    "dbs": _dbs,
    "good": _good,
    "bad": _bad,
    "export": export_command,
    "chart": chart_command,
    "undo": undo_command,
    "edit": _edit,
    "explain": explain_command,
    "indexes": indexes_command,
    "health": health_command,
    "schedule": schedule_command,
    "schedules": schedules_command,
}

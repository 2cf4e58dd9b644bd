"""Charts on answers: from the question's words, the Chart button, and ``/chart``.

* An answer whose question asks for a chart ("plot …", "bar chart of …") gets one drawn from the table it
  already shows, unless the model drew one with ``make_chart``; a result that cannot be drawn gets a short
  note instead of an error (the answer itself stands).
* The Chart button arrives with nothing but the answer id and the clicking identity. The answer's last
  statement runs again as the person who clicked: their own mapped role, the guard and the read path again,
  never the asker's role. The record of another thread is refused when the adapter says where it is.
* ``/chart [line|bar|scatter] [SELECT …]`` draws the thread's last answer (its SQL again), or the query given.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, cast

import structlog

from core.agent.answer_actions import as_clicker, recall_answer
from core.charts import KINDS, ChartKind, chart_request, draw_chart, with_notes
from core.errors import ChartError, ModelHint, PgbotError
from core.messages import ChartImage, Reply, ReplyKind
from core.tools.chart import query_chart
from core.tools.registry import ToolContext

if TYPE_CHECKING:
    from core.agent.host import CommandHost as Agent  # the agent as commands see it; the loop imports this

log = structlog.get_logger(__name__)

USAGE = "Usage: /chart [line|bar|scatter] [SELECT …]  (alone: a chart of this thread's last answer)"


async def chart_answer_reply(ctx: ToolContext, reply: Reply, chart: ChartImage | None) -> Reply:
    """The turn's answer with its chart: the one the model drew, else one the question asks for."""
    if reply.kind is not ReplyKind.ANSWER:
        return reply
    if chart is None:
        request = chart_request(ctx.question) if ctx.settings.charts.from_question else None
        if request is None or reply.table is None:
            return reply
        try:
            chart = await draw_chart(reply.table, settings=ctx.settings.charts, kind=request.kind,
                                     question=ctx.question, sql=reply.sql[-1] if reply.sql else "")
        except ChartError as exc:
            return dataclasses.replace(reply, text=f"{reply.text}\n\nNo chart: {exc.user_message}")
    return dataclasses.replace(reply, chart=chart, text=with_notes(reply.text, chart))


def _parse(arg: str) -> tuple[ChartKind | None, str]:
    word, _, rest = arg.strip().partition(" ")
    if word.lower() in KINDS:
        return cast(ChartKind, word.lower()), rest.strip()
    return None, arg.strip()


async def _drawn(ctx: ToolContext, sql: str, *, kind: ChartKind | None, question: str, intro: str) -> Reply:
    try:
        output, chart = await query_chart(ctx, sql, kind=kind, question=question)
    except ModelHint as hint:  # no model here: the hint is meant for the person
        raise PgbotError(hint.hint) from None
    rows = output.table.row_count if output.table is not None else 0
    text = f"{intro} ({rows:,} row{'s' if rows != 1 else ''})."
    return Reply(kind=ReplyKind.RESULT, text=with_notes(text, chart), sql=output.sql, chart=chart,
                 database=ctx.database.name)


async def chart_command(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    """``/chart [kind] [SQL]``: a chart of the query given, else of the thread's last answer (run again as you)."""
    kind, sql = _parse(arg)
    question = ""
    if not sql:
        last = await agent.last_answer(ctx.thread_key)
        if last is None or not last.sql:
            raise PgbotError(USAGE)
        sql, question = last.sql[-1], last.question
    return await _drawn(ctx, sql, kind=kind, question=question, intro="Chart drawn from the query")


async def chart_answer(
    agent: Agent, *, answer_id: str, identity: str, groups: tuple[str, ...], thread_key: str | None
) -> Reply:
    """A Chart click: the answer's last statement again as ``identity``'s own role, drawn."""
    record = await recall_answer(agent, answer_id, thread_key)
    if not record.sql:
        return Reply(kind=ReplyKind.INFO, text="This answer ran no query, so there is nothing to chart.",
                     database=record.database)
    ctx = as_clicker(agent, record, identity=identity, groups=groups)
    actor = ctx.actor
    who = f"as role {actor.role}" if actor.role else "as pgbot's login role"
    async with agent.turn_slot(user=identity, database=record.database):
        return await _drawn(ctx, record.sql[-1], kind=None, question=record.question,
                            intro=f"Chart of the answer's query, run again {who}")

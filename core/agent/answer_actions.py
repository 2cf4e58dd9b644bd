"""The buttons under an answer that are not a vote: "Show SQL" and "Export all rows (CSV)".

Both arrive with nothing but the answer id (``Reply.answer_id``), the clicking identity and the thread the
button is in; the answer's record (core.prompt.feedback.AnswerRecord) says what ran. The export runs the answer's
table statement again as the person who clicked: their own mapped role, checked by the guard again, never
the asker's role. Its file goes to the clicker only when they are not the asker (``export_private``), since
their role may read more than the thread was shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from core.errors import PgbotError
from core.messages import Reply, ReplyKind
from core.pretty_sql import pretty_sql
from core.prompt.feedback import AnswerRecord
from core.tools.exporting import export_for
from core.tools.registry import ToolContext

if TYPE_CHECKING:
    from core.agent.host import CommandHost as Agent  # the agent as commands see it; the loop imports this

log = structlog.get_logger(__name__)

FORGOTTEN = ("pgbot no longer remembers that answer (answers are kept as long as their thread's context); "
             "ask again to get a fresh one.")
ELSEWHERE = "That button belongs to another conversation, so pgbot ignored it."


async def recall_answer(agent: Agent, answer_id: str, thread_key: str | None, *,
                        elsewhere: str = ELSEWHERE) -> AnswerRecord:
    """The record behind a button or window on an answer; refused when forgotten, or when the adapter says the
    click came from another thread than the answer's (``elsewhere``: the refusal's words)."""
    record = await agent.recall_answer(answer_id)
    if record is None:
        raise PgbotError(FORGOTTEN)
    if thread_key is not None and record.thread_key != thread_key:
        log.warning("answer_click_elsewhere", answer_id=answer_id, thread=thread_key)
        raise PgbotError(elsewhere)
    return record


def as_clicker(agent: Agent, record: AnswerRecord, *, identity: str, groups: tuple[str, ...]) -> ToolContext:
    """A tool context for running an answer's SQL again as the person who clicked: their own mapped role on
    the answer's database (AccessDeniedError when they have none), never the asker's."""
    return agent.context_for(database=record.database, identity=identity, groups=groups,
                             thread_key=record.thread_key, question=record.question,
                             tags={"answer_id": record.answer_id})


async def show_sql(agent: Agent, *, answer_id: str, thread_key: str | None) -> Reply:
    """The statements behind an answer, pretty-printed, for the clicker alone (the adapter replies privately)."""
    record = await recall_answer(agent, answer_id, thread_key)
    if not record.sql:
        return Reply(kind=ReplyKind.INFO, text="This answer ran no SQL.", database=record.database)
    return Reply(kind=ReplyKind.INFO, text=f"The SQL behind this answer, as it ran on {record.database}:",
                 sql=tuple(pretty_sql(s) for s in record.sql), database=record.database)


async def export_answer(
    agent: Agent, *, answer_id: str, identity: str, groups: tuple[str, ...], thread_key: str | None
) -> Reply:
    """Every row of the answer's table statement as CSV, run as ``identity``'s own role."""
    record = await recall_answer(agent, answer_id, thread_key)
    sql = record.table_sql or (record.sql[-1] if record.sql else "")
    if not sql:
        return Reply(kind=ReplyKind.INFO, text="This answer has no result to export.", database=record.database)
    ctx = as_clicker(agent, record, identity=identity, groups=groups)
    async with agent.turn_slot(user=identity, database=record.database):
        result = await export_for(ctx, sql)
    private = identity != record.asked_by
    who = f" as role {ctx.actor.role}" if ctx.actor.role else ""
    return Reply(kind=ReplyKind.RESULT, text=f"{result.summary()}{who}.", database=record.database,
                 export=result.file(private=private), role=ctx.actor.role)

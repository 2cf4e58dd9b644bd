"""Edit and re-run: the "Edit SQL" button (Slack and Discord modals) and ``/edit`` in the terminal.

An edit is a message of its own in the answer's thread (``Message.edit_of`` names the answer), so it keeps the
thread's order, limits and error policy like any message. What it runs is decided here, never by the answer:

* The answer is looked up by id, and refused when it belongs to another thread than the one the edit comes
  from (a button or modal moved to another conversation, forged ids): the adapter says where it is.
* The edited text runs as the *editor's* own mapped role on the answer's database, through the same guard
  as ``/sql``: a read is answered as a new answer (its own id and buttons), a change becomes a proposal
  with the usual approval card. Several statements, forbidden ones, empty or oversized text are refused.
* The thread keeps both versions: history gets "edited SQL of answer X: …" and the result, tagged with the
  editor's read scope, so a follow-up question builds on the edited result and another role's turn sees
  it withheld like any result (core.threads.history_scope).

Submitting the same edit twice runs it twice: a read is answered twice, a change is proposed twice (two cards,
each decided on its own), exactly as two ``/sql`` messages would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.agent.answer_actions import recall_answer
from core.errors import GuardError, ModelHint, PgbotError
from core.llm.base import ChatTurn, ReadScope
from core.messages import Message, Reply, ReplyKind, new_id
from core.pretty_sql import pretty_sql
from core.prompt.feedback import AnswerRecord
from core.sqlguard import StatementKind
from core.tools.format import table_for_model
from core.tools.registry import ToolContext

if TYPE_CHECKING:
    from core.agent.host import CommandHost as Agent

ELSEWHERE = "That edit belongs to another conversation, so pgbot ignored it."
NO_SQL = "This answer ran no SQL, so there is nothing to edit."
NO_ANSWER = "There is no answer with SQL in this conversation to edit yet."
EMPTY = "The SQL is empty: write one statement, or close the window to keep the answer as it is."
HISTORY_PREFIX = "edited SQL of answer"
CHANGE_TOOL = "propose_change"  # where a person's change goes (/sql, an edit); off means no changes from chat


@dataclass(frozen=True, slots=True)
class EditSource:
    """The statement an edit starts from: the answer's last statement as it ran (not yet laid out)."""

    answer_id: str
    database: str
    sql: str


def editable_sql(sql: str, *, max_chars: int) -> str | None:
    """The text an edit window starts with: the statement laid out when that fits ``max_chars`` (the
    platform's input limit), else as it ran when that fits, else None (the adapter then offers no edit)."""
    for text in (pretty_sql(sql), sql.strip()):
        if text and len(text) <= max_chars:
            return text
    return None


async def edit_source(
    agent: Agent, *, answer_id: str | None, thread_key: str, identity: str, groups: tuple[str, ...]
) -> EditSource:
    """What an edit window shows: answer ``answer_id`` of ``thread_key`` (None: the thread's last answer).

    Refused before anyone types: an answer of another thread, one without SQL, and an editor with no role on
    its database (who could not run the edit anyway)."""
    if answer_id is None:
        record = await agent.last_answer(thread_key)
        if record is None:
            raise PgbotError(NO_ANSWER)
    else:
        record = await recall_answer(agent, answer_id, thread_key, elsewhere=ELSEWHERE)
    if not record.sql:
        raise PgbotError(NO_SQL)
    # The editor's role there, resolved now: someone who could not run the edit gets no window.
    agent.context_for(database=record.database, identity=identity, groups=groups, thread_key=thread_key)
    return EditSource(answer_id=record.answer_id, database=record.database, sql=record.sql[-1])


def check_edit(agent: Agent, sql: str, *, max_chars: int) -> str | None:
    """Why an edit window's text cannot run, said while the window is still open (empty, over the window's
    ``max_chars``, not parseable, several statements, forbidden); None when it may be submitted. Only a first
    answer for people: the run checks everything again."""
    text = sql.strip()
    if not text:
        return EMPTY
    if len(text) > max_chars:
        return f"The SQL is {len(text):,} characters; this window takes at most {max_chars:,}. Use /sql instead."
    try:
        classification = agent.classify_sql(text)
    except GuardError as exc:
        return exc.user_message
    if classification.kind is StatementKind.FORBIDDEN:
        return classification.reason or "This statement is refused."
    return None


async def run_edit(agent: Agent, message: Message) -> Reply:
    """Run ``message.text`` as an edit of answer ``message.edit_of``, as the message's sender (see module)."""
    if message.edit_of is None:
        raise PgbotError("This message edits no answer.")
    record = await recall_answer(agent, message.edit_of, message.thread_key, elsewhere=ELSEWHERE)
    sql = message.text.strip()
    if not sql:
        raise PgbotError(EMPTY)
    ctx = agent.context_for(database=record.database, identity=message.identity, groups=message.groups,
                            thread_key=record.thread_key, question=record.question,
                            tags={"edit_of": record.answer_id})
    said = f"{HISTORY_PREFIX} {record.answer_id}: {sql}"
    try:
        if agent.needs_approval(sql):
            return await _propose(agent, ctx, sql, said)
        return await _read(agent, ctx, record, sql, said, by=message.user_name.strip()[:80])
    except ModelHint as hint:  # no model here: the hint is meant for the person
        raise PgbotError(hint.hint) from None


async def _read(agent: Agent, ctx: ToolContext, record: AnswerRecord, sql: str, said: str, *, by: str) -> Reply:
    """A read: a new answer of its own (id, buttons, 👍/👎 on the original question with the edited SQL);
    ``by``: the editor's display name, so the thread sees who ran it (the context line says as which role)."""
    output = await agent.run_tool(ctx, "run_query", {"sql": sql})
    table = output.table
    rows = table.row_count if table is not None else 0
    who = f" by {by}" if by else ""
    text = f"Edited SQL of answer {record.answer_id}{who}, run again: {rows:,} row{'s' if rows != 1 else ''}"
    if table is not None and table.truncated:
        text += f" (cut at {table.row_cap}; more rows exist)"
    answer_id = new_id()
    await agent.remember_answer(AnswerRecord(
        answer_id=answer_id, database=record.database, question=record.question, sql=output.sql,
        thread_key=record.thread_key, asked_by=ctx.actor.identity, table_sql=output.sql[-1] if output.sql else "",
    ))
    summary = f"{text}.\nSQL: " + "\n".join(output.sql)
    if table is not None:
        summary += "\n" + table_for_model(table, max_rows=20, max_chars=2000)
    await _keep(ctx, said, summary)
    ctx.log.info("edit_ran", answer_id=answer_id, rows=rows)
    return Reply(kind=ReplyKind.ANSWER, text=f"{text}.", sql=output.sql, table=table, database=record.database,
                 answer_id=answer_id, role=ctx.actor.role, edit_of=record.answer_id)


async def _propose(agent: Agent, ctx: ToolContext, sql: str, said: str) -> Reply:
    """A change: the same held proposal as ``/sql`` or the model would make, under the editor's role."""
    output = await agent.run_tool(ctx, CHANGE_TOOL, {"sql": sql})
    reply = await agent.pending_reply(ctx, output)
    await _keep(ctx, said, output.text)
    ctx.log.info("edit_proposed", action_id=reply.approval.action_id if reply.approval else None)
    return reply


async def _keep(ctx: ToolContext, said: str, summary: str) -> None:
    read_as = (ReadScope(database=ctx.database.name, role=ctx.actor.role),)
    await ctx.store.append(ctx.thread_key, [ChatTurn(role="user", content=said, read_as=read_as),
                                            ChatTurn(role="assistant", content=summary, read_as=read_as)])

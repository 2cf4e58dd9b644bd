"""Reply → Block Kit, within Slack's limits (3000 chars per section text, 50 blocks per message).

An answer reads answer → data → context: the sentence, the result (core.display's formatted values), one
context line (database · role · rows · time · time zone), then the buttons: "Show SQL" (the SQL itself only
when ``[chat] show_sql = "inline"``), "Export all rows (CSV)" when the row cap cut the result, 👍/👎.

The result is Slack's native ``table`` block where it fits (Slack: at most 100 rows of at most 20 cells,
cells ``raw_text`` or ``rich_text``, one table per message, shown at the bottom of the message as an
attachment), else a monospace code block (``native_table=False``: the app's retry when Slack refuses the
table); a one-row result is key: value fields. Every text goes through :func:`escape` (Slack parses ``&``,
``<`` and ``>`` as markup, even in code blocks; ``raw_text`` cells are plain text). Button ``value``s carry
the ids core needs back: the action id on Approve/Reject, the answer id on the answer's buttons; the
adapter never interprets them. A result the message does not show in full also comes back as a CSV file
for the app to upload beside the answer. A statement too long for an approval card comes back whole as ``change.sql``:
the card says so, and never shows a cut statement without it. Markdown links from the model show their
real URL; no label can disguise one.

The pieces (escaped text, sections, buttons, the result's blocks) are :mod:`adapters.slack.blocks`'; approval
cards and a question's answer buttons come from :mod:`adapters.slack.cards` and :mod:`adapters.slack.questions`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from adapters.slack import cards, questions
from adapters.slack.blocks import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    Block,
    button,
    context,
    escape,
    fits_code_block,
    result_blocks,
    section,
    to_mrkdwn,
)
from adapters.text_table import MAX_CELL, cut, text_table
from core import (
    ApprovalPrompt,
    DisplayTable,
    Reply,
    ReplyKind,
    ResultTable,
    ScheduleCard,
    ScheduleChange,
    can_chart,
    context_line,
    editable_sql,
    pretty_sql,
)

FALLBACK_LIMIT = 3000  # the notification text; the blocks carry the full message

FEEDBACK_UP = "pgbot_feedback_up"
FEEDBACK_DOWN = "pgbot_feedback_down"
CHART = "pgbot_chart"
CHART_BLOCK = "pgbot_chart"
SHOW_SQL = "pgbot_show_sql"
EXPORT = "pgbot_export"
UNDO = "pgbot_undo"
UNDO_BLOCK = "pgbot_undo"
EDIT_SQL = "pgbot_edit_sql"
EDIT_BLOCK = "pgbot_edit"
EDIT_LIMIT = 3000  # Slack's plain_text_input max_length: the modal cannot hold a longer statement
FEEDBACK_BLOCK = "pgbot_feedback"
SCHEDULE_PAUSE = "pgbot_schedule_pause"
SCHEDULE_RESUME = "pgbot_schedule_resume"
SCHEDULE_DELETE = "pgbot_schedule_delete"
SCHEDULE_ACTIONS: dict[str, ScheduleChange] = {
    SCHEDULE_PAUSE: "pause", SCHEDULE_RESUME: "resume", SCHEDULE_DELETE: "delete"}
MAX_CARDS = 10  # two blocks each; /schedules in the terminal or the CLI lists any number

_ICONS = {
    ReplyKind.WORKING: ":hourglass_flowing_sand: ",
    ReplyKind.ERROR: ":warning: ",
    ReplyKind.APPROVAL: ":lock: ",
}


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A file uploaded into the thread beside the message: the whole result table as CSV when the message
    shows only part of it, or the whole statement of an approval card (``change.sql``)."""

    filename: str
    title: str
    content: bytes
    # Posted in the thread when the upload fails, after "could not be attached (<Slack's error>)".
    if_lost: str = "The result could not be attached as a CSV file"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """The arguments of chat.postMessage / chat.update: notification text plus blocks (and a file to attach)."""

    text: str
    blocks: list[Block]
    file: CsvFile | None = None


def _chunks(text: str, *, max_chunks: int) -> list[str]:
    """Split long text into section-sized pieces at line or word breaks (never inside ``&lt;``)."""
    chunks: list[str] = []
    while text and len(chunks) < max_chunks:
        if len(text) <= SECTION_LIMIT:
            chunks.append(text)
            return chunks
        cut = max(text.rfind("\n", 0, SECTION_LIMIT), text.rfind(" ", 0, SECTION_LIMIT))
        cut = cut if cut > SECTION_LIMIT // 2 else SECTION_LIMIT - 1
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text:
        chunks[-1] = chunks[-1][: SECTION_LIMIT - 1] + "…"
    return chunks


def sql_file(prompt: ApprovalPrompt) -> CsvFile:
    """The whole statement of an approval card (passwords masked as on the card), for the approver to read."""
    lines = prompt.sql.count("\n") + 1
    return CsvFile(filename=cards.SQL_FILE, title=f"Full statement ({lines} lines) of change {prompt.action_id}",
                   content=prompt.sql.encode(),
                   if_lost=("The full statement of this change could not be attached, so the card shows only its "
                            "start. Do not approve what you have not read in full: reject it and ask again"))


def table_blocks(table: ResultTable) -> list[Block]:
    return fit_table(table)[0]


def fit_table(table: ResultTable, *, file_note: bool = False) -> tuple[list[Block], bool]:
    """The table as a monospace block plus a note of what was left out; True when nothing was left out.

    ``file_note`` says the caller attaches the whole table as CSV, so the note points there.
    """
    if not table.columns:
        return [context("The statement returned no columns.")], True
    # Escaping can grow text (< → &lt;), so lay out within a budget that leaves room for it.
    budget = SECTION_LIMIT - 400
    columns = _columns_that_fit(table, budget=budget)
    shown_table = table if columns == len(table.columns) else ResultTable(
        columns=table.columns[:columns], rows=tuple(row[:columns] for row in table.rows),
        truncated=table.truncated, row_cap=table.row_cap,
    )
    grid, shown = text_table(shown_table, max_chars=budget)
    body = escape(grid)
    while len(body) > SECTION_LIMIT - 8 and shown > 0:
        grid, shown = text_table(shown_table, max_chars=len(grid) - 200)
        body = escape(grid)
    blocks = [section(f"```\n{body}\n```")]
    notes = []
    if shown < table.row_count:
        notes.append(f"… {table.row_count - shown} more rows")
    if columns < len(table.columns):
        notes.append(f"{len(table.columns) - columns} more columns")
    long_cells = any(_cut_cell(value) for row in table.rows[:shown] for value in row[:columns])
    complete = shown == table.row_count and columns == len(table.columns) and not long_cells
    if not complete and file_note:
        notes.append("the full result is in the CSV file below")
    if table.truncated:
        notes.append(f"result cut at {table.row_cap} rows; more exist (/export gives every row)")
    if notes:
        blocks.append(context(" · ".join(notes)))
    return blocks, complete


def _cut_cell(value: object) -> bool:
    """Whether the monospace table shows this value shortened or reflowed (the CSV keeps it whole)."""
    return isinstance(value, str) and (len(value) > MAX_CELL or any(c in value for c in "\r\n\t"))


def _columns_that_fit(table: ResultTable, *, budget: int) -> int:
    """The most leading columns whose header, rule and first row fit in ``budget`` (at least one)."""
    sample = table.rows[:1]
    for count in range(len(table.columns), 1, -1):
        probe = ResultTable(columns=table.columns[:count], rows=tuple(row[:count] for row in sample))
        if len(text_table(probe, max_chars=1 << 30)[0]) <= budget:
            return count
    return 1


def csv_file(table: ResultTable, *, database: str | None) -> CsvFile:
    """Every row the reply holds, as UTF-8 CSV with a header row (NULL as an empty field)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table.columns)
    writer.writerows(["" if v is None else v for v in row] for row in table.rows)
    name = f"{database or 'result'}-{table.row_count}-rows.csv"
    return CsvFile(filename=name, title=f"Result ({table.row_count} rows)", content=buffer.getvalue().encode())


def schedule_blocks(card: ScheduleCard) -> list[Block]:
    """The schedule's line and its buttons: Pause (or Resume) and Delete (confirmed first); values are its id."""
    toggle = button("Resume", SCHEDULE_RESUME, card.schedule_id) if card.paused else \
        button("Pause", SCHEDULE_PAUSE, card.schedule_id)
    delete = button("Delete", SCHEDULE_DELETE, card.schedule_id, "danger")
    delete["confirm"] = {
        "title": {"type": "plain_text", "text": "Delete this schedule?"},
        "text": {"type": "plain_text", "text": "It stops for good; the audit trail keeps its history."},
        "confirm": {"type": "plain_text", "text": "Delete"}, "deny": {"type": "plain_text", "text": "Keep it"},
        "style": "danger",
    }
    return [section(to_mrkdwn(card.summary)),
            {"type": "actions", "block_id": f"pgbot_schedule_{card.schedule_id}"[:255], "elements": [toggle, delete]}]


def feedback_block(answer_id: str, *, show_sql: bool = False, export: bool = False) -> Block:
    """The answer's buttons: Show SQL and Export all rows (when they apply), then 👍/👎."""
    elements = []
    if show_sql:
        elements.append(button("Show SQL", SHOW_SQL, answer_id))
    if export:
        elements.append(button("Export all rows (CSV)", EXPORT, answer_id))
    elements += [button("👍", FEEDBACK_UP, answer_id), button("👎", FEEDBACK_DOWN, answer_id)]
    return {"type": "actions", "block_id": FEEDBACK_BLOCK, "elements": elements}


def chart_blocks(reply: Reply) -> list[Block]:
    """A "Chart" button under an answer whose table can be drawn and that has no chart yet."""
    if not reply.answer_id or reply.chart is not None or not can_chart(reply.table):
        return []
    return [{"type": "actions", "block_id": CHART_BLOCK,
             "elements": [button(":chart_with_upwards_trend: Chart", CHART, reply.answer_id)]}]


def undo_blocks(reply: Reply) -> list[Block]:
    """An "Undo" button under the outcome of an approved change whose rows pgbot kept (core.undo)."""
    if not reply.undo_id:
        return []
    return [{"type": "actions", "block_id": UNDO_BLOCK,
             "elements": [button(":leftwards_arrow_with_hook: Undo", UNDO, reply.undo_id)]}]


def edit_blocks(reply: Reply) -> list[Block]:
    """An "Edit SQL" button under an answer that ran SQL, when the statement fits Slack's modal; else a note."""
    if not reply.answer_id or not reply.sql:
        return []
    if editable_sql(reply.sql[-1], max_chars=EDIT_LIMIT) is None:
        return [context("SQL too long to edit here; use /sql with your edited statement.")]
    return [{"type": "actions", "block_id": EDIT_BLOCK,
             "elements": [button(":pencil2: Edit SQL", EDIT_SQL, reply.answer_id)]}]


def sql_blocks(statements: tuple[str, ...]) -> list[Block]:
    """Statements in code blocks, split at line breaks so a long one is shown whole across blocks."""
    blocks: list[Block] = []
    room = SECTION_LIMIT - 8
    for statement in statements:
        chunk = ""
        for line in escape(statement.replace("```", "` ` `")).splitlines() or [""]:
            while len(line) > room:  # one enormous line: hard-cut it
                if chunk:
                    blocks.append(section(f"```\n{chunk}\n```"))
                    chunk = ""
                blocks.append(section(f"```\n{line[:room]}\n```"))
                line = line[room:]
            if chunk and len(chunk) + 1 + len(line) > room:
                blocks.append(section(f"```\n{chunk}\n```"))
                chunk = ""
            chunk = f"{chunk}\n{line}" if chunk else line
        blocks.append(section(f"```\n{chunk}\n```"))
    return blocks


def _result_note(reply: Reply, shown: DisplayTable | None) -> str:
    """``showing 15 of 500+ · 10 more columns in the CSV`` and, for a capped result, where the rest is."""
    if shown is None:
        return ""
    notes = [shown.note(where="in the CSV")] if not shown.complete or shown.more_exist else []
    if shown.more_exist and not reply.answer_id:
        notes.append("more rows exist: /export with the query gives every row")
    return " · ".join(n for n in notes if n)


def render(reply: Reply, *, show_sql: str = "button", native_table: bool = True) -> SlackMessage:
    """The whole message for one reply; the trailing actions block always survives the block cap.

    ``show_sql``: "button" (an answer's SQL behind Show SQL) or "inline" (``[chat] show_sql``)."""
    icon = questions.QUESTION if questions.is_question(reply) else _ICONS.get(reply.kind, "")
    blocks: list[Block] = []
    file: CsvFile | None = None
    if reply.text and reply.approval is None:  # a card says it all for people (adapters.slack.cards)
        text = cards.with_mentions(to_mrkdwn(reply.text), reply)
        blocks.extend(section(chunk) for chunk in _chunks(icon + text, max_chunks=4))
    actions: list[Block] = []
    sql_button = False
    export_button = False
    if reply.approval is not None:
        card, decision = cards.card_blocks(reply.approval)
        blocks.extend(card)
        actions.append(decision)
        if not fits_code_block(reply.approval.sql):
            file = sql_file(reply.approval)
    else:
        shown: DisplayTable | None = None
        if reply.table is not None:
            table, shown = result_blocks(reply.table, native_table=native_table)
            blocks.extend(table)
            if shown is not None and not shown.complete:
                file = csv_file(reply.table, database=reply.database)
            note = _result_note(reply, shown)
            if note:
                blocks.append(context(escape(note)))
            export_button = bool(reply.answer_id and reply.table.truncated)
        sql_button = bool(reply.answer_id and reply.sql and show_sql == "button")
        if reply.sql and not sql_button:
            blocks.extend(sql_blocks(tuple(pretty_sql(s) for s in reply.sql)))
        if reply.database and reply.kind in (ReplyKind.ANSWER, ReplyKind.RESULT):
            blocks.append(context(escape(context_line(reply, shown))))
    actions.extend(questions.option_blocks(reply))
    actions.extend(chart_blocks(reply))  # its own row, above 👍/👎
    actions.extend(undo_blocks(reply))
    for schedule in reply.schedules[:MAX_CARDS]:
        blocks.extend(schedule_blocks(schedule))
    if len(reply.schedules) > MAX_CARDS:
        blocks.append(context(f"… and {len(reply.schedules) - MAX_CARDS} more (`pgbot schedule list` shows all)"))
    actions.extend(edit_blocks(reply))
    if reply.answer_id:
        actions.append(feedback_block(reply.answer_id, show_sql=sql_button, export=export_button))
    if reply.error_id:
        blocks.append(context(f"error id: {escape(reply.error_id)}"))
    room = MAX_BLOCKS - len(actions)
    if len(blocks) > room:
        blocks = [*blocks[: room - 1], context(f"… {len(blocks) - room + 1} more blocks not shown")]
    fallback = cards.with_mentions(escape(reply.text).strip() or reply.kind.value, reply)
    fallback = f"{icon}{fallback}" if reply.text else fallback
    if reply.approval is not None:
        fallback = cards.notification(reply.approval)
    return SlackMessage(text=cut(fallback, FALLBACK_LIMIT), blocks=[*blocks, *actions], file=file)

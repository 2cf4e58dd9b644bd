"""Reply → Block Kit, within Slack's limits (3000 chars per section text, 50 blocks per message).

Every text goes through :func:`escape` (Slack parses ``&``, ``<`` and ``>`` as markup, even in code
blocks). Button ``value``s carry the ids core needs back: the action id on Approve/Reject, the answer id
on 👍/👎; the adapter never interprets them. A result table that does not fit in full (rows, columns or
long cells cut) also comes back as a CSV file for the app to upload beside the answer.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from adapters.text_table import MAX_CELL, cut, text_table
from core import ApprovalPrompt, Reply, ReplyKind, ResultTable, ScheduleCard, ScheduleChange

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
FALLBACK_LIMIT = 3000  # the notification text; the blocks carry the full message

APPROVE = "pgbot_approve"
REJECT = "pgbot_reject"
FEEDBACK_UP = "pgbot_feedback_up"
FEEDBACK_DOWN = "pgbot_feedback_down"
DECISION_BLOCK = "pgbot_decision"
FEEDBACK_BLOCK = "pgbot_feedback"
SCHEDULE_PAUSE = "pgbot_schedule_pause"
SCHEDULE_RESUME = "pgbot_schedule_resume"
SCHEDULE_DELETE = "pgbot_schedule_delete"
SCHEDULE_ACTIONS: dict[str, ScheduleChange] = {
    SCHEDULE_PAUSE: "pause", SCHEDULE_RESUME: "resume", SCHEDULE_DELETE: "delete"}
MAX_CARDS = 10  # two blocks each; /schedules in the terminal or the CLI lists any number

Block = dict[str, Any]

_ICONS = {
    ReplyKind.WORKING: ":hourglass_flowing_sand: ",
    ReplyKind.ERROR: ":warning: ",
    ReplyKind.APPROVAL: ":lock: ",
}


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A whole result table as CSV, uploaded into the thread when the message shows only part of it."""

    filename: str
    title: str
    content: bytes


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """The arguments of chat.postMessage / chat.update: notification text plus blocks (and a file to attach)."""

    text: str
    blocks: list[Block]
    file: CsvFile | None = None


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str) -> str:
    """Markdown as models write it → Slack mrkdwn (bold, headings, links and fence languages differ), escaped."""
    text = escape(text)
    text = re.sub(r"```[A-Za-z0-9_+-]+\n", "```\n", text)
    text = re.sub(r"^#{1,6} +(.+)$", r"*\1*", text, flags=re.MULTILINE)
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)
    return re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", text)



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


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}]}


def code_block(code: str) -> Block:
    """A ``` block whose fences survive truncation."""
    body = escape(code.replace("```", "` ` `"))
    room = SECTION_LIMIT - 8
    return section(f"```\n{cut(body, room)}\n```")


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


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def approval_blocks(prompt: ApprovalPrompt) -> list[Block]:
    who = f"<@{prompt.requested_by.removeprefix('slack:')}>" if prompt.requested_by.startswith("slack:") else (
        escape(prompt.requested_by)
    )
    expires = int(prompt.expires_at)
    facts = [
        f"*Database:* {escape(prompt.database)}",
        f"*Runs as:* {escape(prompt.role or 'the login role')}",
        f"*Requested by:* {who}",
        f"*Expires:* <!date^{expires}^{{date_short_pretty}} {{time}}|{expires}>",
    ]
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Approval needed", "emoji": True}},
        section(to_mrkdwn(prompt.summary or prompt.kind)),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]},
        code_block(prompt.sql),
    ]
    if prompt.preview is not None:
        blocks.append(context("Preview:"))
        blocks.extend(table_blocks(prompt.preview))
    blocks.append({
        "type": "actions",
        "block_id": DECISION_BLOCK,
        "elements": [
            _button("Approve", APPROVE, prompt.action_id, "primary"),
            _button("Reject", REJECT, prompt.action_id, "danger"),
        ],
    })
    return blocks


def schedule_blocks(card: ScheduleCard) -> list[Block]:
    """The schedule's line and its buttons: Pause (or Resume) and Delete (confirmed first); values are its id."""
    toggle = _button("Resume", SCHEDULE_RESUME, card.schedule_id) if card.paused else \
        _button("Pause", SCHEDULE_PAUSE, card.schedule_id)
    delete = _button("Delete", SCHEDULE_DELETE, card.schedule_id, "danger")
    delete["confirm"] = {
        "title": {"type": "plain_text", "text": "Delete this schedule?"},
        "text": {"type": "plain_text", "text": "It stops for good; the audit trail keeps its history."},
        "confirm": {"type": "plain_text", "text": "Delete"}, "deny": {"type": "plain_text", "text": "Keep it"},
        "style": "danger",
    }
    return [section(to_mrkdwn(card.summary)),
            {"type": "actions", "block_id": f"pgbot_schedule_{card.schedule_id}"[:255], "elements": [toggle, delete]}]


def feedback_block(answer_id: str) -> Block:
    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [_button("👍", FEEDBACK_UP, answer_id), _button("👎", FEEDBACK_DOWN, answer_id)],
    }


def render(reply: Reply) -> SlackMessage:
    """The whole message for one reply; the trailing actions block always survives the block cap."""
    icon = _ICONS.get(reply.kind, "")
    blocks: list[Block] = []
    file: CsvFile | None = None
    if reply.text:
        blocks.extend(section(chunk) for chunk in _chunks(icon + to_mrkdwn(reply.text), max_chunks=4))
    actions: list[Block] = []
    if reply.approval is not None:
        body = approval_blocks(reply.approval)  # header first, then the text, the facts and the SQL
        blocks = [body[0], *blocks, *body[1:-1]]
        actions.append(body[-1])
    else:
        blocks.extend(code_block(sql) for sql in reply.sql)
        if reply.table is not None:
            table, complete = fit_table(reply.table, file_note=True)
            blocks.extend(table)
            if not complete:
                file = csv_file(reply.table, database=reply.database)
        if reply.database and reply.kind in (ReplyKind.ANSWER, ReplyKind.RESULT):
            blocks.append(context(f"database: {escape(reply.database)}"))
    for card in reply.schedules[:MAX_CARDS]:
        blocks.extend(schedule_blocks(card))
    if len(reply.schedules) > MAX_CARDS:
        blocks.append(context(f"… and {len(reply.schedules) - MAX_CARDS} more (`pgbot schedule list` shows all)"))
    if reply.answer_id:
        actions.append(feedback_block(reply.answer_id))
    if reply.error_id:
        blocks.append(context(f"error id: {escape(reply.error_id)}"))
    room = MAX_BLOCKS - len(actions)
    if len(blocks) > room:
        blocks = [*blocks[: room - 1], context(f"… {len(blocks) - room + 1} more blocks not shown")]
    fallback = f"{icon}{reply.text}".strip() or reply.kind.value
    return SlackMessage(text=cut(escape(fallback), FALLBACK_LIMIT), blocks=[*blocks, *actions], file=file)


def decided_blocks(blocks: list[Block], *, note: str) -> list[Block]:
    """The approval message after a decision: same content, buttons replaced by who decided."""
    kept = [b for b in blocks if b.get("block_id") != DECISION_BLOCK]
    return [*kept, context(note)][:MAX_BLOCKS]

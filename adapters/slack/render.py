"""Reply → Block Kit, within Slack's limits (3000 chars per section text, 50 blocks per message).

Every text goes through :func:`escape` (Slack parses ``&``, ``<`` and ``>`` as markup, even in code
blocks). Button ``value``s carry the ids core needs back: the action id on Approve/Reject, the answer id
on 👍/👎; the adapter never interprets them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from adapters.text_table import cut, text_table
from core import ApprovalPrompt, Reply, ReplyKind, ResultTable

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
FALLBACK_LIMIT = 3000  # the notification text; the blocks carry the full message

APPROVE = "pgbot_approve"
REJECT = "pgbot_reject"
FEEDBACK_UP = "pgbot_feedback_up"
FEEDBACK_DOWN = "pgbot_feedback_down"
DECISION_BLOCK = "pgbot_decision"
FEEDBACK_BLOCK = "pgbot_feedback"

Block = dict[str, Any]

_ICONS = {
    ReplyKind.WORKING: ":hourglass_flowing_sand: ",
    ReplyKind.ERROR: ":warning: ",
    ReplyKind.APPROVAL: ":lock: ",
}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """The arguments of chat.postMessage / chat.update: notification text plus blocks."""

    text: str
    blocks: list[Block]


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
    if not table.columns:
        return [context("The statement returned no columns.")]
    # Escaping can grow text (< → &lt;), so lay out within a budget that leaves room for it.
    grid, shown = text_table(table, max_chars=SECTION_LIMIT - 400)
    body = escape(grid)
    while len(body) > SECTION_LIMIT - 8 and shown > 0:
        grid, shown = text_table(table, max_chars=len(grid) - 200)
        body = escape(grid)
    blocks = [section(f"```\n{body}\n```")]
    notes = []
    if shown < table.row_count:
        notes.append(f"… {table.row_count - shown} more rows")
    if table.truncated:
        notes.append(f"result cut at {table.row_cap} rows; more exist")
    if notes:
        blocks.append(context(" · ".join(notes)))
    return blocks


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
            blocks.extend(table_blocks(reply.table))
        if reply.database and reply.kind in (ReplyKind.ANSWER, ReplyKind.RESULT):
            blocks.append(context(f"database: {escape(reply.database)}"))
    if reply.answer_id:
        actions.append(feedback_block(reply.answer_id))
    if reply.error_id:
        blocks.append(context(f"error id: {escape(reply.error_id)}"))
    room = MAX_BLOCKS - len(actions)
    if len(blocks) > room:
        blocks = [*blocks[: room - 1], context(f"… {len(blocks) - room + 1} more blocks not shown")]
    fallback = f"{icon}{reply.text}".strip() or reply.kind.value
    return SlackMessage(text=cut(escape(fallback), FALLBACK_LIMIT), blocks=[*blocks, *actions])


def decided_blocks(blocks: list[Block], *, note: str) -> list[Block]:
    """The approval message after a decision: same content, buttons replaced by who decided."""
    kept = [b for b in blocks if b.get("block_id") != DECISION_BLOCK]
    return [*kept, context(note)][:MAX_BLOCKS]

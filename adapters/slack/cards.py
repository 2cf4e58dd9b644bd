"""Approval cards in Block Kit, and the one state line that ends them.

A card asks its question in the header ("Approve: UPDATE 3 rows in customers?"), shows the before → after
lines of the changed columns in a monospace block (or, for INSERT/DELETE, the preview grid), says what the
change does in words, names who may approve as mentions (so Slack notifies them), then the SQL, the notes and
a state line above Approve / Reject. After a click the card is edited from the blocks Slack sends back with
the click: the state line is replaced ("Approved by @x — running", "Applied: UPDATE 3 in 12 ms", "Rejected by
@y", "Failed: … (nothing changed)", "Expired 14:05") and the buttons go once the card takes no more clicks.
Identities become mentions only where core put them (``Reply.mentions``, approvers from config), never in
text from the model or the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from adapters.slack.blocks import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    Block,
    button,
    code_block,
    context,
    escape,
    fits_code_block,
    result_blocks,
    section,
    to_mrkdwn,
)
from adapters.text_table import cut
from core import ApprovalPrompt, Reply
from core import cards as core_cards
from core.card_state import CardState, CardStatus
from core.cards import state_text, who_may_approve

PLATFORM = "slack:"
APPROVE = "pgbot_approve"
REJECT = "pgbot_reject"
DECISION_BLOCK = "pgbot_decision"
STATE_BLOCK = "pgbot_card_state"
SQL_FILE = "change.sql"  # a statement too long for the card, attached whole (render.sql_file)
HEADER_LIMIT = 150  # Slack's header block: plain text, at most 150 characters


def mention(identity: str) -> str | None:
    """``slack:U024BE7LH`` → ``<@U024BE7LH>``; None for another platform's identity or group."""
    user = identity.removeprefix(PLATFORM)
    if identity.startswith(PLATFORM) and user.isalnum():
        return f"<@{user}>"
    return None


def name(identity: str) -> str:
    """A person as Slack shows them: a mention, else the identity as text (``pgbot``, ``terminal:ops``)."""
    return mention(identity) or escape(identity)


def clock(stamp: float) -> str:
    """A time every reader sees in their own time zone; the fallback (old clients) is UTC."""
    fallback = dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%H:%M UTC")
    return f"<!date^{int(stamp)}^{{time}}|{fallback}>"


def with_mentions(text: str, reply: Reply) -> str:
    """Slack text (already escaped) with the identities core named in the reply shown as mentions."""
    return core_cards.with_mentions(text, reply.mentions, mention=mention)


def state_block(state: CardState, *, elapsed_s: float | None = None) -> Block:
    """The card's state line (``block_id`` :data:`STATE_BLOCK`, so later edits find it)."""
    text = state_text(state, name=name, clock=clock, elapsed_s=elapsed_s)
    return {"type": "context", "block_id": STATE_BLOCK,
            "elements": [{"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}]}


def card_blocks(prompt: ApprovalPrompt) -> tuple[list[Block], Block]:
    """The pending card's blocks, and its Approve / Reject row (kept last by the caller)."""
    blocks: list[Block] = [{"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                         "text": cut(prompt.question or "Approval needed",
                                                                     HEADER_LIMIT)}}]
    if prompt.diff:
        blocks.append(code_block("\n".join(prompt.diff)))
        if prompt.diff_note:
            blocks.append(context(escape(prompt.diff_note)))
    elif prompt.preview is not None and prompt.preview.columns:
        blocks.append(context("Preview, from a run that was rolled back:"))
        blocks.extend(result_blocks(prompt.preview, native_table=False)[0])
    if prompt.details:
        blocks.append(section(to_mrkdwn("\n".join(prompt.details))))
    approvers = who_may_approve(prompt.approvers, name=mention)
    facts = [
        f"*Database:* {escape(prompt.database)}",
        f"*Runs as:* {escape(prompt.role or 'the login role')}",
        f"*Requested by:* {name(prompt.requested_by)}",
        f"*Expires:* {clock(prompt.expires_at)}",
    ]
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]})
    blocks.append(section(f"*May approve:* {approvers}"))
    blocks.append(code_block(prompt.sql))
    if not fits_code_block(prompt.sql):
        lines = prompt.sql.count("\n") + 1
        blocks.append(section(f":paperclip: *Full statement ({lines} lines) attached: {SQL_FILE}* — the block "
                              "above shows only its start; read the file before you approve."))
    blocks.extend(section(f":warning: {escape(note)}") for note in prompt.notes)
    blocks.append(state_block(CardState(status=CardStatus.PENDING, at=prompt.expires_at)))
    decision = {"type": "actions", "block_id": DECISION_BLOCK, "elements": [
        button("Approve", APPROVE, prompt.action_id, "primary"),
        button("Reject", REJECT, prompt.action_id, "danger"),
    ]}
    return blocks[: MAX_BLOCKS - 1], decision


def notification(prompt: ApprovalPrompt) -> str:
    """The message's text (what the notification shows): the question and who may approve, as mentions."""
    return cut(f"{escape(prompt.question or prompt.summary)} May approve: "
               f"{who_may_approve(prompt.approvers, name=mention)}", 3000)


def restated(blocks: list[dict[str, Any]], state: CardState, *, elapsed_s: float | None = None) -> list[Block]:
    """The card (its blocks as Slack sent them back with the click) in a new state: the state line replaced
    and, unless it is still waiting, no buttons."""
    line = state_block(state, elapsed_s=elapsed_s)
    kept: list[Block] = []
    for block in blocks:
        if block.get("block_id") == DECISION_BLOCK and state.status is not CardStatus.PENDING:
            continue
        kept.append(line if block.get("block_id") == STATE_BLOCK else block)
    if not any(b.get("block_id") == STATE_BLOCK for b in kept):  # a card posted before state lines existed
        kept.append(line)
    return kept[:MAX_BLOCKS]


def state_fallback(state: CardState) -> str:
    """The card's notification text after a change of state (chat.update needs one)."""
    return state_text(state, name=name, clock=clock)

"""The "Working on it…" message while core works on a turn, and the notice when a long one ends.

It says what is happening ("Working on it… running the query on shop (12 s)") and offers Cancel (only the
person who asked may use it: core checks). It is edited in place by an :class:`adapters.live_line.LiveLine`
(at most one edit per 3 s; the phase as soon as the rate allows, the elapsed time every few seconds), never
posted again. A turn that took longer than :data:`NOTIFY_AFTER_S` ends with a new message mentioning the asker,
because Slack does not notify anyone of an edit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError

from adapters.live_line import TurnLine, elapsed_text
from adapters.slack.blocks import Block, button, escape, section
from adapters.slack.render import SlackMessage
from adapters.text_table import cut
from core import Reply
from core.threads.turn_status import TurnStatus

__all__ = ["CANCEL", "NOTIFY_AFTER_S", "WORKING_BLOCK", "elapsed_text", "noticed", "working_line", "working_message"]

CANCEL = "pgbot_cancel"
WORKING_BLOCK = "pgbot_working"
NOTIFY_AFTER_S = 10.0
ICON = ":hourglass_flowing_sand: "


def working_message(working: Reply, *, phase: str = "", elapsed_s: float | None = None) -> SlackMessage:
    """``Working on it… asking the model (12 s)`` with a Cancel button when core named the turn."""
    text = working.text + (f" {phase}" if phase else "")
    if elapsed_s is not None:
        text += f" ({elapsed_text(elapsed_s)})"
    blocks: list[Block] = [section(ICON + escape(text))]
    turn = working.turn_id
    if turn:
        blocks.append({"type": "actions", "block_id": WORKING_BLOCK,
                       "elements": [button("Cancel", CANCEL, turn)]})
    return SlackMessage(text=ICON + escape(text), blocks=blocks)


def noticed(shown: SlackMessage, *, user: str, took_s: float) -> SlackMessage:
    """The answer to a long turn as a new message that mentions (and so notifies) the person who asked."""
    note = f"<@{user}> here is your answer (it took {elapsed_text(took_s)})."
    return SlackMessage(text=cut(f"<@{user}> {shown.text}", 3000), blocks=[section(note), *shown.blocks][:50],
                        file=shown.file)


def working_line(
    working: Reply, status: TurnStatus | None, *, put: Callable[[SlackMessage], Awaitable[None]], every_s: float
) -> TurnLine:
    """The live "Working on it…" line: the turn's phase as core reports it, and the time so far."""

    async def edit(phase: str, elapsed_s: float) -> None:
        await put(working_message(working, phase=phase, elapsed_s=elapsed_s))

    return TurnLine(edit, status, every_s=every_s, errors=(SlackApiError,))

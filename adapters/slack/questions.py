"""A clarifying question reads as one ("❓ Question: …"), with its answers as buttons when core offers them.

Clicking an answer sends it as the clicker's own reply in the thread (as if they had typed it), and the
buttons are replaced by who chose what, so a question is answered once. The answer text travels in the
button's value (Slack signs the click payload, so it is what pgbot posted); it is checked again on click
with the same rule core applies (short, one line, never a slash command).
"""

from __future__ import annotations

import re
from typing import Any

from adapters.slack.blocks import Block, button, context, escape
from core import Reply
from core.tools.clarify import clarification_choices

OPTION = re.compile(r"^pgbot_option_\d$")
OPTIONS_BLOCK = "pgbot_options"
QUESTION = "❓ *Question:* "


def is_question(reply: Reply) -> bool:
    return reply.clarification


def option_blocks(reply: Reply) -> list[Block]:
    """One button per answer core offered (at most 5, each its own action id)."""
    choices = clarification_choices(list(reply.choices))
    if not is_question(reply) or not choices:
        return []
    return [{"type": "actions", "block_id": OPTIONS_BLOCK,
             "elements": [button(choice, f"pgbot_option_{i}", choice) for i, choice in enumerate(choices)]}]


def chosen(value: object) -> str | None:
    """The clicked answer, if it still passes core's rule for answers people may click."""
    found = clarification_choices([value]) if isinstance(value, str) else ()
    return found[0] if found and found[0] == value else None


def answered_blocks(blocks: list[dict[str, Any]], *, user: str, choice: str) -> list[Block]:
    """The question after a click: the buttons replaced by who chose what."""
    kept = [b for b in blocks if b.get("block_id") != OPTIONS_BLOCK]
    return [*kept, context(f"↳ <@{user}> chose: {escape(choice)}")]

"""``ask_clarification``: a question back to the user instead of a guess, optionally with answers to pick.

The tool pauses the turn with a :class:`Clarification`: the agent ends it with the question as an INFO reply
(no SQL) marked as a clarification, with the options as ``Reply.choices`` for adapters to show as buttons.
The user's answer (typed, or a clicked option sent as their reply) arrives as the next message in the same
thread, with the history.
"""

from __future__ import annotations

from core.tools.registry import Clarification, ToolContext, ToolKind, ToolOutput, tool

CLARIFY_TOOL = "ask_clarification"
MAX_QUESTION_CHARS = 500
MAX_OPTIONS = 5
MAX_OPTION_CHARS = 80  # a button label (Discord allows 80 characters, Slack 75 before it cuts)


@tool(kind=ToolKind.READ, always=True)
async def ask_clarification(ctx: ToolContext, question: str, options: list[str] | None = None) -> ToolOutput:
    """Ask the user one short question when the request is ambiguous in a way that changes the answer. The
    reply comes back as the next message.

    Args:
        question: e.g. "Revenue before or after refunds?"
        options: up to 5 short answers to pick, e.g. ["before refunds", "after refunds"]
    """
    return ToolOutput(text="The question was posted in the thread. Stop now and wait for the user's reply.",
                      pause=Clarification(question=clarification_text(question),
                                          choices=clarification_choices(options)))


def clarification_text(question: str) -> str:
    """The question as posted: one paragraph, bounded."""
    text = " ".join(question.split())
    return text if len(text) <= MAX_QUESTION_CHARS else text[: MAX_QUESTION_CHARS - 1] + "…"


def clarification_choices(options: object) -> tuple[str, ...]:
    """The options people may click: short one-line texts, no duplicates, at most :data:`MAX_OPTIONS`. A
    clicked option is sent as the clicker's own message, so one that reads as a command (``/sql …``) is left
    out: a button must never run something its label does not plainly say."""
    if not isinstance(options, list):
        return ()
    kept: dict[str, None] = {}
    for option in options:
        text = " ".join(str(option).split())
        if text and not text.startswith("/") and len(text) <= MAX_OPTION_CHARS:
            kept.setdefault(text, None)
    return tuple(kept)[:MAX_OPTIONS]

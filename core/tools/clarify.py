"""``ask_clarification``: a question back to the user instead of a guess.

The agent recognises a successful call by this tool's name: it ends the turn with the question as an INFO
reply (no SQL), and the user's answer arrives as the next message in the same thread, with the history.
"""

from __future__ import annotations

from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool

CLARIFY_TOOL = "ask_clarification"
MAX_QUESTION_CHARS = 500


@tool(kind=ToolKind.READ, always=True)
async def ask_clarification(ctx: ToolContext, question: str) -> ToolOutput:
    """Ask the user one short question when the request is ambiguous in a way that changes the answer. Ends the turn.

    Args:
        question: e.g. "Revenue before or after refunds?"
    """
    return ToolOutput(text="The question was posted in the thread. Stop now and wait for the user's reply.")


def clarification_text(question: str) -> str:
    """The question as posted: one paragraph, bounded."""
    text = " ".join(question.split())
    return text if len(text) <= MAX_QUESTION_CHARS else text[: MAX_QUESTION_CHARS - 1] + "…"

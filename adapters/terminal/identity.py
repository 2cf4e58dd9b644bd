"""Who types in the terminal, and the Message a line becomes: shared by the chat loop and ``/edit``."""

from __future__ import annotations

import getpass

from core import Message


def terminal_identity() -> str:
    """The OS user: config maps ``terminal:<os user>`` to a database role."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def new_message(text: str, *, thread: str) -> Message:
    user = terminal_identity()
    return Message(platform="terminal", workspace="local", channel="tty", thread=thread, user=user, text=text,
                   user_name=user)

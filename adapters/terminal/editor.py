"""``/edit`` in the terminal: the last answer's SQL in ``$VISUAL``/``$EDITOR``, or an inline prompt.

The editor gets a temporary ``.sql`` file in a private directory (removed afterwards); without an editor
configured, or when the chat does not run on a terminal (a pipe, a script), the statement is printed and the
edit is read from the prompt, ending at an empty line. An empty result, or an editor that fails, runs
nothing. What comes back goes to core as an edit of that answer: run as the terminal user's role, through
the same guard; a change becomes the usual y/N approval.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol

from adapters.terminal.identity import new_message, terminal_identity
from core import Agent, Reply, pretty_sql, render_error

MAX_EDIT_BYTES = 1_000_000  # a file bigger than this is not read back (core refuses far less anyway)
CANCELLED = "Edit cancelled: nothing ran."
Read = Callable[[str], Awaitable[str | None]]


class EditingChat(Protocol):
    """What ``/edit`` needs of the chat it runs in (adapters.terminal.chat.TerminalChat), without importing it."""

    agent: Agent
    thread: str
    interactive: bool

    def show(self, reply: Reply) -> None: ...

    def note(self, text: str) -> None: ...

    async def read(self, prompt: str) -> str | None: ...

    async def send(self, text: str, *, edit_of: str | None = None) -> None: ...


def editor_command(environ: Mapping[str, str]) -> list[str] | None:
    """``$VISUAL``, else ``$EDITOR``, split like a shell would (``code --wait`` works); None when unset."""
    for name in ("VISUAL", "EDITOR"):
        words = shlex.split(environ.get(name, ""))
        if words:
            return words
    return None


async def in_editor(initial: str, command: list[str]) -> tuple[str | None, str]:
    """Run ``command FILE`` on a file holding ``initial``; (the edited text, '') or (None, why not)."""
    with tempfile.TemporaryDirectory(prefix="pgbot-edit-") as folder:  # created 0700: only this user reads it
        path = Path(folder) / "edit.sql"
        path.write_text(initial + "\n", encoding="utf-8")
        try:
            proc = await asyncio.create_subprocess_exec(*command, str(path))
        except OSError as exc:
            return None, f"The editor {command[0]!r} could not be started ({exc.strerror or exc})."
        status = await proc.wait()
        if status != 0:
            return None, f"The editor exited with status {status}."
        if path.stat().st_size > MAX_EDIT_BYTES:
            return None, f"The file is over {MAX_EDIT_BYTES:,} bytes."
        return path.read_text(encoding="utf-8", errors="replace"), ""


async def inline(initial: str, *, read: Read, show: Callable[[str], None]) -> str:
    """The statement printed, the edit read line by line up to an empty line (or end of input)."""
    show(f"The SQL of the last answer:\n{initial}\n"
         "Type the edited statement; an empty line ends it (an empty first line cancels).")
    lines: list[str] = []
    total = 0
    while True:
        line = await read("edit> ")
        if line is None or not line.strip():
            return "\n".join(lines)
        lines.append(line.rstrip("\n"))
        total += len(line)
        if total > MAX_EDIT_BYTES:
            return "\n".join(lines)  # core refuses it with its size; no point reading on


async def edit_last_answer(chat: EditingChat) -> None:
    """``/edit``: the thread's last answer's SQL, edited, then run by core as an edit of that answer."""
    key = new_message("", thread=chat.thread).thread_key
    try:
        source = await chat.agent.edit_source(thread_key=key, user=f"terminal:{terminal_identity()}")
    except Exception as exc:  # noqa: BLE001 - the error policy: one reply, traceback logged
        chat.show(render_error(exc))
        return
    initial = pretty_sql(source.sql)
    command = editor_command(os.environ)
    if command is not None and chat.interactive:
        edited, problem = await in_editor(initial, command)
    else:
        edited, problem = await inline(initial, read=chat.read, show=chat.note), ""
    if edited is None or not edited.strip():
        chat.note(f"{problem} {CANCELLED}".strip())
        return
    await chat.send(edited.strip(), edit_of=source.answer_id)

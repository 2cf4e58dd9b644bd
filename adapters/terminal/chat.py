"""The terminal chat: the same core as Slack and Discord, one thread per session.

Reads lines (with readline history when interactive), sends each as a Message, renders replies with rich,
and turns approval requests into a y/N confirmation prompt. ``/edit`` edits the last answer's SQL in
``$EDITOR`` or at the prompt (adapters.terminal.editor) and runs it again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import uuid
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console

from adapters.terminal.charts import chart_dir, save_chart
from adapters.terminal.editor import edit_last_answer
from adapters.terminal.identity import new_message, terminal_identity
from adapters.terminal.render import render_reply
from core import Agent, Reply, ReplyKind

PROMPT = "pgbot> "
HISTORY_FILE = Path(os.environ.get("PGBOT_HISTORY_FILE", Path.home() / ".pgbot" / "history"))


async def ask_once(agent: Agent, text: str, *, thread: str | None = None, edit_of: str | None = None) -> Reply:
    """Send one message and return the final reply (the WORKING one is skipped); ``edit_of``: ``text`` is the
    edited SQL of that answer (``/edit``)."""
    final: Reply | None = None
    message = dataclasses.replace(new_message(text, thread=thread or uuid.uuid4().hex), edit_of=edit_of)
    async for reply in agent.handle(message):
        if reply.kind is not ReplyKind.WORKING:
            final = reply
    if final is None:
        raise RuntimeError("the agent returned no reply")  # a bug in core, surfaced by the CLI error policy
    return final


class TerminalChat:
    def __init__(self, agent: Agent, *, console: Console | None = None, interactive: bool | None = None) -> None:
        self.agent = agent
        self.console = console or Console()
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.thread = uuid.uuid4().hex

    async def run(self, *, banner: str = "") -> None:
        if banner:
            self.console.print(banner, style="dim", markup=False, highlight=False)
        self._setup_readline()
        while True:
            line = await self._read(PROMPT)
            if line is None:
                break
            text = line.strip()
            if not text:
                continue
            if text in {"/quit", "/exit", "\\q"}:
                break
            if text.split(maxsplit=1)[0].lower() == "/edit":
                await edit_last_answer(self)
                continue
            await self.send(text)
        self._save_readline()

    async def send(self, text: str, *, edit_of: str | None = None) -> None:
        with self.console.status("Working on it…", spinner="dots") if self.interactive else nullcontext():
            reply = await ask_once(self.agent, text, thread=self.thread, edit_of=edit_of)
        render_reply(self.console, reply)
        await self._show_chart(reply)
        if reply.approval is not None:
            await self._confirm(reply)

    async def _show_chart(self, reply: Reply) -> None:
        """A chart cannot be drawn in a terminal: it is written to a PNG file and its path shown."""
        if reply.chart is None:
            return
        try:
            path = await save_chart(reply.chart, directory=chart_dir(self.agent.settings), database=reply.database)
        except OSError as exc:
            self.console.print(f"The chart could not be saved: {exc.strerror or exc}", style="bold red",
                               markup=False, highlight=False)
            return
        self.console.print(f"Chart ({reply.chart.kind}) saved to {path}", style="green", markup=False,
                           highlight=False)

    async def _confirm(self, reply: Reply) -> None:
        assert reply.approval is not None
        answer = await self._read("Approve and run it? [y/N] ")
        approve = (answer or "").strip().lower() in {"y", "yes"}

        outcome = await self.agent.decide(
            action_id=reply.approval.action_id, decided_by=f"terminal:{terminal_identity()}", approve=approve,
            progress=self._progress,
        )
        render_reply(self.console, outcome)

    def show(self, reply: Reply) -> None:
        render_reply(self.console, reply)

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    async def read(self, prompt: str) -> str | None:
        """A line from the person (the same input as the chat's prompt)."""
        return await self._read(prompt)

    async def _progress(self, text: str) -> None:
        """Progress lines of long approved work (backups, index builds), as they come."""
        self.console.print(text, style="dim", markup=False, highlight=False)

    async def _read(self, prompt: str) -> str | None:
        try:
            if self.interactive:
                return await asyncio.to_thread(input, prompt)
            line: str = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return None
            self.console.print(prompt + line.rstrip("\n"), style="dim", markup=False, highlight=False)
            return line
        except EOFError:
            return None

    def _setup_readline(self) -> None:
        if not self.interactive:
            return
        try:
            import readline

            HISTORY_FILE.parent.mkdir(parents=True, exist_ok=True)
            if HISTORY_FILE.exists():
                readline.read_history_file(HISTORY_FILE)
            readline.set_history_length(1000)
        except (ImportError, OSError) as exc:
            self.console.print(f"(no line history: {exc})", style="dim", markup=False)

    def _save_readline(self) -> None:
        if not self.interactive:
            return
        try:
            import readline

            readline.write_history_file(HISTORY_FILE)
        except (ImportError, OSError) as exc:
            self.console.print(f"(history not saved: {exc})", style="dim", markup=False)

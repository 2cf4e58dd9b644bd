"""Scheduled posts in the terminal: printed while ``pgbot chat`` is open. With no chat open nothing claims the
terminal's runs; they wait and run once, labelled late, the next time a chat is open."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

from adapters.terminal.render import render_reply
from core import Destination, Reply


class TerminalSender:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.open = True

    def ready(self) -> bool:
        return self.open

    async def send(self, destination: Destination, replies: Sequence[Reply]) -> None:
        for reply in replies:
            render_reply(self.console, reply)

    async def current_groups(self, destination: Destination, identity: str) -> tuple[str, ...] | None:
        return None  # no platform groups here: the roles table maps identities only

"""What the buttons and ``/pgbot`` need of the Discord client, so their modules need not import ``bot.py``.

``bot.py`` builds the client (:class:`adapters.discord.bot.PgbotClient`) from the views and the command group;
those in turn see the client only through these Protocols, which keeps the three modules out of a circle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import discord

from adapters.card_sweep import CardSweep
from core import Agent, Message
from core.config import DiscordSettings


@runtime_checkable
class ButtonHost(Protocol):
    """The client a button click arrives on."""

    agent: Agent
    settings: DiscordSettings
    sweep: CardSweep[discord.Message]  # approval cards posted here, expired on time
    progress_every_s: float  # how often a live line refreshes its elapsed time

    async def answer(
        self, incoming: Message, where: discord.abc.Messageable | Callable[[], Awaitable[discord.abc.Messageable]]
    ) -> None: ...

    async def _answer_interaction(self, interaction: discord.Interaction[Any], incoming: Message) -> None: ...


class Asker(Protocol):
    """The client ``/pgbot ask`` hands its question to."""

    async def ask(self, interaction: discord.Interaction[Any], question: str) -> None: ...

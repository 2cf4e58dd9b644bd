"""What the buttons and ``/pgbot`` need of the Discord client, so their modules need not import ``bot.py``.

``bot.py`` builds the client (:class:`adapters.discord.bot.PgbotClient`) from the views and the command group;
those in turn see the client only through these Protocols, which keeps the three modules out of a circle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import discord
import structlog

from adapters.card_sweep import CardSweep
from adapters.discord.events import allowed_place
from core import Agent, Message
from core.config import DiscordSettings

log = structlog.get_logger(__name__)
NOT_HERE = "pgbot is not enabled in this server or channel, so this button does nothing here."


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


def button_host(interaction: discord.Interaction[Any]) -> ButtonHost:
    """The client a click arrived on, as the views, the edit window and the turn buttons see it."""
    client = interaction.client
    if not isinstance(client, ButtonHost):
        raise TypeError("pgbot buttons need the client made by build_discord_client")
    return client


async def refused_here(interaction: discord.Interaction[Any]) -> bool:
    """True (after telling the clicker privately) when config keeps pgbot out of where the click came from:
    a copied message, or a guild pgbot was added to but does not serve, must not approve or vote."""
    settings = button_host(interaction).settings
    channel = interaction.channel
    if channel is not None and allowed_place(guild_id=interaction.guild_id, channel=channel,
                                             allowed_guilds=settings.allowed_guilds,
                                             allowed_channels=settings.allowed_channels):
        return False
    log.warning("discord_click_not_allowed", guild=interaction.guild_id, user=interaction.user.id)
    await interaction.response.send_message(NOT_HERE, ephemeral=True)
    return True


class Asker(Protocol):
    """The client ``/pgbot ask`` hands its question to."""

    async def ask(self, interaction: discord.Interaction[Any], question: str) -> None: ...

"""Run the Discord bot until cancelled, with one-line errors for the usual setup mistakes."""

from __future__ import annotations

import discord

from adapters.discord.bot import build_discord_client
from core import Agent, ConfigError
from core.config import DISCORD_TOKEN_FROM, DiscordSettings


async def run_discord(agent: Agent, settings: DiscordSettings) -> None:
    """Log in and stay connected to the gateway until cancelled."""
    if settings.token is None or not settings.token.get_secret_value():
        raise ConfigError(f"discord.token is not set ({DISCORD_TOKEN_FROM})")
    client = build_discord_client(agent, settings, chat=agent.settings.chat)
    # /readyz: logged in, gateway session READY, not closed (discord.py reconnects on its own).
    agent.health.report_chat("discord", lambda: client.is_ready() and not client.is_closed())
    try:
        async with client:
            await client.start(settings.token.get_secret_value())
    except discord.LoginFailure:
        raise ConfigError(f"discord.token was rejected by Discord (check {DISCORD_TOKEN_FROM})") from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "Discord refused the Message Content intent: enable it for the bot in the Developer Portal "
            "(Bot → Privileged Gateway Intents)"
        ) from None

"""``pgbot slack`` and ``pgbot discord``: long-running bots over the same agent."""

from __future__ import annotations

from bot.logs import configure_logging
from bot.wiring import build_agent
from core import load_settings
from core.errors import ConfigError


async def slack(*, config: str | None) -> int:
    settings = load_settings(config)
    configure_logging(settings)
    if settings.slack.bot_token is None:
        raise ConfigError("slack.bot_token is not set (PGBOT_SLACK__BOT_TOKEN or [slack] bot_token)")
    from adapters.slack.runner import run_slack

    agent = build_agent(settings)
    try:
        await run_slack(agent, settings.slack)
    finally:
        await agent.aclose()
    return 0


async def discord(*, config: str | None) -> int:
    settings = load_settings(config)
    configure_logging(settings)
    if settings.discord.token is None:
        raise ConfigError("discord.token is not set (PGBOT_DISCORD__TOKEN or [discord] token)")
    from adapters.discord.runner import run_discord

    agent = build_agent(settings)
    try:
        await run_discord(agent, settings.discord)
    finally:
        await agent.aclose()
    return 0

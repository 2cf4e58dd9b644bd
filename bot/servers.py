"""``pgbot slack`` and ``pgbot discord``: long-running bots over the same agent."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable

from bot.logs import configure_logging
from bot.observability import ObservabilityServer
from bot.wiring import build_agent
from core import Agent, Settings, load_settings
from core.errors import ConfigError


async def slack(*, config: str | None) -> int:
    settings = load_settings(config)
    if settings.slack.bot_token is None:
        raise ConfigError("slack.bot_token is not set (PGBOT_SLACK__BOT_TOKEN or [slack] bot_token)")
    from adapters.slack.runner import run_slack

    return await serve(settings, lambda agent: run_slack(agent, settings.slack), chat="slack")


async def discord(*, config: str | None) -> int:
    settings = load_settings(config)
    if settings.discord.token is None:
        raise ConfigError("discord.token is not set (PGBOT_DISCORD__TOKEN or [discord] token)")
    from adapters.discord.runner import run_discord

    return await serve(settings, lambda agent: run_discord(agent, settings.discord), chat="discord")


async def serve(settings: Settings, run: Callable[[Agent], Awaitable[None]], *, chat: str | None = None) -> int:
    """Build the agent, serve /healthz, /readyz and /metrics when configured, and run the bot until it stops.

    ``chat`` names the platform whose connection /readyz waits for; its runner reports it (core.health).
    """
    configure_logging(settings)
    agent = build_agent(settings)
    if chat is not None:
        agent.health.expect_chat(chat)
    observability = None
    try:
        if settings.observability.port is not None:
            observability = ObservabilityServer(agent, port=settings.observability.port)
            await observability.start()
        # Everything loaded so far lives as long as the process: keep it out of full GC passes, which
        # otherwise stall the event loop for tens of ms under load (docs/PERFORMANCE.md).
        gc.freeze()
        await run(agent)
    finally:
        if observability is not None:
            await observability.stop()
        await agent.aclose()
    return 0

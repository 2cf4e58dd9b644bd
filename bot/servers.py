"""``pgbot slack`` and ``pgbot discord``: long-running bots over the same agent."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable

import structlog

from bot.logs import configure_logging
from bot.observability import ObservabilityServer
from bot.wiring import build_bot
from core import Agent, Settings, load_settings
from core.config import DISCORD_TOKEN_FROM
from core.errors import ConfigError

log = structlog.get_logger(__name__)


async def slack(*, config: str | None) -> int:
    settings = load_settings(config)
    if settings.slack.bot_token is None:
        raise ConfigError("slack.bot_token is not set (PGBOT_SLACK__BOT_TOKEN or [slack] bot_token)")
    from adapters.slack.runner import run_slack

    return await serve(settings, lambda agent: run_slack(agent, settings.slack), chat="slack")


async def discord(*, config: str | None) -> int:
    settings = load_settings(config)
    if settings.discord.token is None:
        raise ConfigError(f"discord.token is not set ({DISCORD_TOKEN_FROM})")
    from adapters.discord.runner import run_discord

    # discord.py closes its HTTP session with the gateway: keep both until in-flight turns have posted.
    return await serve(settings, lambda agent: run_discord(agent, settings.discord), chat="discord",
                       receive_while_draining=True)


async def serve(
    settings: Settings, run: Callable[[Agent], Awaitable[None]], *, chat: str | None = None,
    receive_while_draining: bool = False,
) -> int:
    """Build the agent, serve /healthz, /readyz and /metrics when configured, and run the bot until it stops.

    ``chat`` names the platform whose connection /readyz waits for; its runner reports it (core.ops.health).
    SIGTERM (or SIGINT) stops it gracefully: the agent takes no new messages, the adapter stops receiving
    (Slack then delivers to another replica; ``receive_while_draining`` keeps the connection until the end,
    for adapters that cannot post without it), work in flight gets ``limits.shutdown_grace_s`` to finish or
    is cancelled with a reply in its thread, then leases are released and pools closed; the exit code is 0.
    """
    configure_logging(settings)
    agent, scheduler = build_bot(settings)  # runs for the platforms whose runner registered a sender
    if chat is not None:
        agent.health.expect_chat(chat)
    observability = None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        if settings.observability.port is not None:
            observability = ObservabilityServer(agent, port=settings.observability.port)
            await observability.start()
        # Everything loaded so far lives as long as the process: keep it out of full GC passes, which
        # otherwise stall the event loop for tens of ms under load (docs/PERFORMANCE.md).
        gc.freeze()
        bot: asyncio.Future[object] = asyncio.ensure_future(run(agent))
        if scheduler is not None:
            scheduler.start()
        stopped: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
        await asyncio.wait({bot, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if bot.done():
            stopped.cancel()
            await bot  # the adapter ended on its own: its error, if any, is the CLI's to report
            return 0
        grace = settings.limits.shutdown_grace_s
        log.info("shutdown_started", grace_s=grace, in_flight=agent.inflight.open)
        agent.begin_shutdown()
        if scheduler is not None:  # a run in progress may finish within the grace period, else it is released
            await scheduler.stop(grace_s=grace)
        if not receive_while_draining:
            await _stop(bot)
        await agent.drain(grace_s=grace)
        await _stop(bot)
        log.info("shutdown_finished")
    finally:
        if scheduler is not None:
            await scheduler.stop(grace_s=0)
            await scheduler.claims.aclose()
        for signum in signals:
            loop.remove_signal_handler(signum)
        if observability is not None:
            await observability.stop()
        await agent.aclose()
    return 0


async def _stop(task: asyncio.Future[object]) -> None:
    """Cancel the adapter's receive loop and wait for it to close its connections."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("adapter_stop_failed")

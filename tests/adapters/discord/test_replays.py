"""One Discord message, one answer: the gateway replays a MESSAGE_CREATE after a RESUME, and every client of a
bot on one shard (replicas sharing Redis) receives it too. ``run_discord`` against the fake gateway, real
agents on the real Postgres and one real Redis: the message opens one thread and is answered once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.discord.runner import run_discord
from bot.wiring import build_agent
from core import Agent
from core.config import DiscordSettings
from tests.adapters.discord.fake_discord import BOT_ID, BOT_USER, CHANNEL_ID, FakeDiscord, message_create, result_text
from tests.helpers import settings_for, wait_until
from tests.integration.test_shutdown import forget


@contextlib.asynccontextmanager
async def bots(fake: FakeDiscord, dsn: str, redis_url: str, count: int) -> AsyncIterator[list[Agent]]:
    """``count`` replicas: each its own agent (same database, same Redis) and its own gateway session."""
    agents = [build_agent(settings_for(dsn, redis_url=redis_url), use_llm=False) for _ in range(count)]
    settings = DiscordSettings(token="test-token", api_base_url=fake.api_url)  # type: ignore[arg-type]
    tasks = [asyncio.create_task(run_discord(agent, settings)) for agent in agents]
    try:
        await fake.wait_for(lambda f: f.identified == count)
        yield agents
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for agent in agents:
            await agent.aclose()
    # Closed within discord.py's 2 s wait for GUILD_CREATEs after READY: its on_ready task must not outlive the
    # client (it would dispatch into the closed client and log a traceback). Cancelled, it may still be
    # pending for a moment: it must end cancelled, not run on.
    ready = [t for t in asyncio.all_tasks() if "_delay_ready" in getattr(t.get_coro(), "__qualname__", "")]
    if ready:
        await asyncio.wait(ready, timeout=10)
    assert all(t.cancelled() for t in ready), ready


def answered(fake: FakeDiscord, message_id: str) -> dict[str, int]:
    """What the message got: threads opened on it, messages posted in its thread, edits there."""
    return {"threads": len(fake.of("POST", "channels", CHANNEL_ID, "messages", message_id, "threads")),
            "posts": len(fake.of("POST", "channels", message_id, "messages")),
            "edits": len(fake.of("PATCH", "channels", message_id, "messages"))}


def duplicates(logs: list[dict[str, Any]], message_id: str) -> int:
    return sum(1 for e in logs if e["event"] == "duplicate_event_ignored" and e["event_id"] == message_id)


@pytest.mark.parametrize("replicas", [1, 2])
async def test_a_message_replayed_after_resume_and_seen_by_every_replica_is_answered_once(
    fake_discord: FakeDiscord, fresh_db: str, redis_url: str, replicas: int
) -> None:
    """One replica: the RESUME replays the message it already answered. Two: both sessions get the message
    (one claims it in Redis), then both resume and the first to do so gets it replayed."""
    mention = message_create(f"<@{BOT_ID}> /sql SELECT 40 + 2 AS answer", mentions=[BOT_USER])
    message_id = mention["id"]
    try:
        with capture_logs() as logs:
            async with bots(fake_discord, fresh_db, redis_url, replicas):
                fake_discord.dispatch("MESSAGE_CREATE", mention)
                await fake_discord.wait_for(lambda f: answered(f, message_id)["edits"] == 1)
                await wait_until(lambda: duplicates(logs, message_id) == replicas - 1, describe=lambda: logs)

                fake_discord.reconnect(replay=[("MESSAGE_CREATE", mention)])
                await fake_discord.wait_for(lambda f: len(f.resumes) == replicas)  # every session resumes
                await wait_until(lambda: duplicates(logs, message_id) == replicas, describe=lambda: logs)
                await fake_discord.handled()

                assert fake_discord.identified == replicas  # resumed, not a new session
                assert fake_discord.resumes[0]["session_id"] and fake_discord.resumes[0]["seq"]
                assert answered(fake_discord, message_id) == {"threads": 1, "posts": 1, "edits": 1}
                (edit,) = fake_discord.of("PATCH", "channels", message_id, "messages")
                assert "answer: 42" in result_text(edit.json)
                assert sum(1 for e in logs if e["event"] == "query_ran") == 1  # the SQL ran once
    finally:
        await forget(redis_url, message_id)

"""A real ``pgbot discord`` process against the fake Discord (REST and gateway), the real Postgres and Redis:
/readyz follows the gateway session (503 before READY, 200 after, 503 once draining), and SIGTERM during a
long query cancels it on the server, tells its thread over REST while the gateway stays connected, tells a
mention that arrives during the drain to send it again (or leaves it to a live replica sharing Redis, which
receives it too), and exits 0 within ``limits.shutdown_grace_s``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.discord.runner import run_discord
from bot.wiring import build_agent
from core.config import DiscordSettings
from core.threads.inflight import NOT_TAKEN, RESTARTING
from tests.adapters.discord.fake_discord import BOT_ID, BOT_USER, CHANNEL_ID, FakeDiscord, RestCall, message_create
from tests.helpers import active_queries, pgbot_process, settings_for
from tests.integration.test_shutdown import forget, wait_active
from tests.services import free_port

GRACE_S = 2.0
TOKEN = "discord-SECRET-token-4242"


def write_config(path: Path, *, dsn: str, redis_url: str, fake: FakeDiscord, port: int) -> Path:
    path.write_text(f"""
[databases.shop]
dsn = "{dsn}"
statement_timeout_ms = 60000

[redis]
url = "{redis_url}"

[limits]
shutdown_grace_s = {GRACE_S}

[observability]
port = {port}

[discord]
token = "{TOKEN}"
api_base_url = "{fake.api_url}"
""", encoding="utf-8")
    return path


def pgbot_discord(config: Path, log: Path) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_", "DISCORD_"))}
    return pgbot_process("discord", config, log, env=env)


async def readyz(session: aiohttp.ClientSession, port: int, *, within_s: float = 20.0) -> tuple[int, str]:
    """GET /readyz, waiting for the process to listen first."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                return response.status, await response.text()
        except aiohttp.ClientConnectorError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def wait_readyz(session: aiohttp.ClientSession, port: int, status: int, *, within_s: float = 10.0) -> str:
    deadline = time.monotonic() + within_s
    while True:
        got, body = await readyz(session, port)
        if got == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz stayed {got}: {body!r}")
        await asyncio.sleep(0.05)


def edits_in(fake: FakeDiscord, thread: str) -> list[RestCall]:
    return fake.of("PATCH", "channels", thread, "messages")


def says(call: RestCall, text: str) -> bool:
    return text in json.dumps(call.json)


@contextlib.asynccontextmanager
async def other_replica(fake: FakeDiscord, dsn: str, redis_url: str) -> AsyncIterator[None]:
    """A live replica in this process: its own agent on the same database and Redis, its own gateway session."""
    agent = build_agent(settings_for(dsn, redis_url=redis_url), use_llm=False)
    settings = DiscordSettings(token="test-token", api_base_url=fake.api_url)  # type: ignore[arg-type]
    task = asyncio.create_task(run_discord(agent, settings))
    try:
        await fake.wait_for(lambda f: f.identified == 2)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await agent.aclose()


@pytest.mark.parametrize("replicas", [1, 2])
async def test_readiness_follows_the_gateway_and_sigterm_drains_over_a_live_gateway(
    fake_discord: FakeDiscord, fresh_db: str, redis_url: str, tmp_path: Path, replicas: int
) -> None:
    """``replicas=2``: a second replica connects once the slow query runs, so the late mention reaches both."""
    port = free_port()
    config = write_config(tmp_path / "pgbot.toml", dsn=fresh_db, redis_url=redis_url, fake=fake_discord, port=port)
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    slow = message_create(f"<@{BOT_ID}> /sql SELECT pg_sleep(60) AS {marker}", mentions=[BOT_USER])
    late = message_create(f"<@{BOT_ID}> /sql SELECT 1 AS late", mentions=[BOT_USER])
    fake_discord.ready_gate.clear()  # the gateway holds READY back until the test has looked at /readyz
    log_path = tmp_path / "pgbot.log"
    try:
        with pgbot_discord(config, log_path) as proc:
            async with aiohttp.ClientSession() as http:
                status, body = await readyz(http, port)
                assert (status, body.startswith("discord: not connected")) == (503, True), body
                await fake_discord.wait_for(lambda f: f.identify is not None, within_s=20)
                assert await readyz(http, port) == (503, "discord: not connected\n")  # IDENTIFY sent, no READY
                fake_discord.ready_gate.set()
                assert await wait_readyz(http, port, 200) == "ready\n"  # READY, then discord.py's guild wait

                fake_discord.dispatch("MESSAGE_CREATE", slow)
                await wait_active(fresh_db, marker, present=True)
                async with contextlib.AsyncExitStack() as stack:
                    if replicas == 2:
                        await stack.enter_async_context(other_replica(fake_discord, fresh_db, redis_url))
                    terminated = time.monotonic()
                    proc.send_signal(signal.SIGTERM)
                    body = await wait_readyz(http, port, 503, within_s=GRACE_S)
                    assert body.startswith("shutting down"), body
                    fake_discord.dispatch("MESSAGE_CREATE", late)  # the gateway is still connected while draining

                    code = await asyncio.to_thread(proc.wait, GRACE_S + 10)
                    took = time.monotonic() - terminated
                    await fake_discord.wait_for(lambda f: len(edits_in(f, late["id"])) == 1)
        log = log_path.read_text(errors="replace")
        assert code == 0, log
        assert took < GRACE_S + 2, log  # within the grace period (plus interpreter exit)
        assert await active_queries(fresh_db, marker) == 0  # cancelled on the server, not left running 60 s
        assert "shutdown_finished" in log and "Traceback" not in log and TOKEN not in log

        (working,) = fake_discord.of("POST", "channels", slow["id"], "messages")  # in the thread opened on it
        (told,) = edits_in(fake_discord, slow["id"])
        assert told.path.endswith(working.response["id"]) and says(told, RESTARTING.split(";")[0])
        assert told.at > terminated  # posted during the drain, over REST, before the client closed

        (late_edit,) = edits_in(fake_discord, late["id"])
        if replicas == 1:  # nobody else took it: the sender is told to send it again
            assert says(late_edit, NOT_TAKEN.split(";")[0]) and late_edit.at > terminated, late_edit
        else:  # the live replica claimed and answered it; the draining one said nothing
            assert not says(late_edit, NOT_TAKEN.split(";")[0]) and says(late_edit, "1 row"), late_edit
        assert len(fake_discord.of("POST", "channels", CHANNEL_ID, "messages", late["id"], "threads")) == 1
        assert len(fake_discord.of("POST", "channels", late["id"], "messages")) == 1  # one "Working on it…"
        assert fake_discord.identified == replicas  # one session each: the gateway was never dropped early
    finally:
        await forget(redis_url, slow["id"])
        await forget(redis_url, late["id"])

"""Real ``pgbot slack`` processes (HTTP mode, a local fake Slack, the real Postgres and Redis):

- SIGTERM during a long query: the query is cancelled on the server, the thread is told, the lease is
  released and the process exits 0 within the grace period;
- SIGKILL while a replica holds a thread's lease: the other replica takes the thread over once the lease
  expires, answers the waiting message and tells the thread the earlier one was lost.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from bot.wiring import build_agent
from core.agent.loop import ABANDONED
from core.threads.inflight import RESTARTING
from tests.adapters.slack.fake_slack import (
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlack,
    app_mention,
    event_body,
    new_ts,
    signed_headers,
)
from tests.adapters.slack.fake_slack import slack_settings as fake_slack_settings
from tests.adapters.slack.test_runner import running
from tests.helpers import active_queries, eventually, pgbot_process, settings_for
from tests.services import delete_keys, free_port

GRACE_S = 2.0
LEASE_S = 1.0


def write_config(path: Path, *, dsn: str, redis_url: str, fake: FakeSlack, port: int) -> Path:
    path.write_text(f"""
[databases.shop]
dsn = "{dsn}"
statement_timeout_ms = 60000

[redis]
url = "{redis_url}"
lease_s = {LEASE_S}

[limits]
shutdown_grace_s = {GRACE_S}

[slack]
mode = "http"
bot_token = "xoxb-1111-2222-test"
signing_secret = "{SIGNING_SECRET}"
http_port = {port}
api_base_url = "{fake.api_url}"
""", encoding="utf-8")
    return path


async def deliver(url: str, body: str, *, within_s: float = 20.0) -> None:
    """POST a signed event, waiting for the process to come up first."""
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.post(url, data=body.encode(),
                                        headers=signed_headers(body, content_type="application/json")) as response:
                    assert response.status == 200
                    return
            except aiohttp.ClientConnectorError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def wait_active(dsn: str, marker: str, *, present: bool, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while (await active_queries(dsn, marker) > 0) != present:
        if time.monotonic() > deadline:
            raise AssertionError(f"query {marker} {'never started' if present else 'still running'}")
        await asyncio.sleep(0.05)


def said(fake: FakeSlack, text: str) -> bool:
    return any(text in json.dumps(c.args) for c in fake.calls if c.method in ("chat.update", "chat.postMessage"))


async def lease_state(redis_url: str, thread_ts: str) -> dict[str, str]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(f"pgbot:turn:*{thread_ts}")]
        assert len(keys) == 1, keys
        state: dict[str, str] = await client.hgetall(keys[0])
        return state
    finally:
        await client.aclose()


async def forget(redis_url: str, thread_ts: str) -> None:
    await delete_keys(redis_url, f"pgbot:*{thread_ts}*")


async def test_sigterm_during_a_long_query_cancels_it_tells_the_thread_and_exits_0(
    fresh_db: str, redis_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(tmp_path / "pgbot.toml", dsn=fresh_db, redis_url=redis_url, fake=fake_slack, port=port)
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    thread = new_ts()
    with pgbot_process("slack", config, tmp_path / "pgbot.log") as proc:
        try:
            body = event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT pg_sleep(60) AS {marker}", ts=thread))
            await deliver(f"http://127.0.0.1:{port}/slack/events", body)
            await wait_active(fresh_db, marker, present=True)
            assert (await lease_state(redis_url, thread)).get("holder") == "1"
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, GRACE_S + 10)
            took = time.monotonic() - started
            log = (tmp_path / "pgbot.log").read_text(errors="replace")
            assert code == 0, log
            assert took < GRACE_S + 2, log  # within the grace period (plus interpreter exit)
            assert await active_queries(fresh_db, marker) == 0  # cancelled on the server, not left running for 60 s
            assert said(fake_slack, RESTARTING.split(";")[0]), fake_slack.calls
            update = fake_slack.of("chat.update")[-1].args
            assert update["ts"] == fake_slack.of("chat.postMessage")[0].args.get("ts", update["ts"])
            state = await lease_state(redis_url, thread)
            assert "holder" not in state and state["served"] == "1"  # released, not left to expire
            assert "shutdown_finished" in log
        finally:
            await forget(redis_url, thread)


async def test_a_replica_killed_while_holding_a_lease_is_taken_over_when_it_expires(
    fresh_db: str, redis_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(tmp_path / "pgbot.toml", dsn=fresh_db, redis_url=redis_url, fake=fake_slack, port=port)
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    thread = new_ts()
    settings = settings_for(fresh_db, redis_url=redis_url)
    settings.redis.lease_s = LEASE_S
    survivor = build_agent(settings)
    other_port = free_port()
    try:
        async with running(survivor, fake_slack_settings(fake_slack, mode="http", http_port=other_port)):
            with pgbot_process("slack", config, tmp_path / "pgbot.log") as doomed:
                first = event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT pg_sleep(60) AS {marker}", ts=thread))
                await deliver(f"http://127.0.0.1:{port}/slack/events", first)
                await wait_active(fresh_db, marker, present=True)
                second = event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 40 + 2 AS after_kill", ts=new_ts(),
                                                thread_ts=thread))
                await deliver(f"http://127.0.0.1:{other_port}/slack/events", second)
                await fake_slack.wait_for(lambda f: len(f.of("chat.postMessage")) == 2)  # both "working"
                first_lease = await lease_state(redis_url, thread)
                assert first_lease["holder"] == "1" and "w:2" in first_lease  # the second is in line behind it

                async def renewed() -> bool:  # the live process's heartbeat pushed its lease on
                    return int((await lease_state(redis_url, thread))["until"]) > int(first_lease["until"])

                await eventually(renewed, what="the live holder's heartbeat to renew its lease")
                state = await lease_state(redis_url, thread)
                assert state["holder"] == "1" and "w:2" in state  # it waits for its turn behind the live lease
                assert not said(fake_slack, "after_kill")
                doomed.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                await asyncio.to_thread(doomed.wait, 10)
            await fake_slack.wait_for(lambda f: said(f, "after_kill"), within_s=LEASE_S * 4 + 5)
            assert time.monotonic() - killed_at < LEASE_S * 4 + 2
            assert said(fake_slack, ABANDONED[:40])  # the thread learns the first message was lost
            state = await lease_state(redis_url, thread)
            assert state["served"] == "2" and "holder" not in state
    finally:
        await survivor.aclose()
        conn = await asyncpg.connect(fresh_db)  # the killed process's query: Postgres ends it on its next write
        try:
            await conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 "
                               "AND pid <> pg_backend_pid()", f"%{marker}%")
        finally:
            await conn.close()
        await forget(redis_url, thread)

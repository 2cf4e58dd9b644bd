"""run_slack for real: HTTP mode serving /slack/events on a port, Socket Mode over a local WebSocket, and the
one-line errors for missing tokens."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.slack.runner import run_slack
from core import Agent, ConfigError
from core.config import SlackSettings
from tests.adapters.slack.agent_double import IdleAgentDouble
from tests.adapters.slack.fake_slack import (
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlack,
    app_mention,
    block_actions,
    event_body,
    new_ts,
    signed_headers,
    slack_settings,
)
from tests.services import free_port


@contextlib.asynccontextmanager
async def running(agent: Agent, settings: SlackSettings) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(run_slack(agent, settings, host="127.0.0.1"))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def post_when_up(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.post(url, data=body.encode(), headers=headers) as response:
                    return response.status, await response.text()
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never came up")


async def test_http_mode_serves_events_and_url_verification(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/slack/events"
    async with running(shop_agent, slack_settings(fake_slack, mode="http", http_port=port)):
        challenge = json.dumps({"token": "XXYYZZ", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                                "type": "url_verification"})
        status, text = await post_when_up(url, challenge, signed_headers(challenge, content_type="application/json"))
        assert status == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in text

        thread = new_ts()
        body = event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 40 + 2 AS answer", ts=thread))
        status, _ = await post_when_up(url, body, signed_headers(body, content_type="application/json"))
        assert status == 200
        await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 1)
        assert fake_slack.of("chat.postMessage")[0].args["thread_ts"] == thread
        one_row = [b for b in fake_slack.of("chat.update")[0].args["blocks"] if b.get("fields")]
        assert one_row[0]["fields"] == [{"type": "mrkdwn", "text": "*answer*\n42"}]  # one row: key and value

        unsigned = await post_when_up(url, body, {"content-type": "application/json"})
        assert unsigned[0] == 401
        assert await shop_agent.health.problems() == []  # /readyz: HTTP mode is ready once it listens


async def test_socket_mode_receives_events_and_clicks_and_acks_them(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    settings = slack_settings(fake_slack, mode="socket", app_token="xapp-1-A0APP00001-test", signing_secret=None)
    shop_agent.health.expect_chat("slack")  # as `pgbot slack` does before starting the runner
    assert await shop_agent.health.problems() == ["slack: not connected yet"]
    async with running(shop_agent, settings):
        thread = new_ts()
        payload = json.loads(event_body(app_mention(f"<@{BOT_USER_ID}> /sql UPDATE items SET qty = 1", ts=thread)))
        await fake_slack.send_envelope("events_api", payload, "0d9e4b4a-1111-4a7e-9d55-000000000001")
        await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 1)
        opened = fake_slack.of("apps.connections.open")[0]
        assert opened.authorization == "Bearer xapp-1-A0APP00001-test"
        update = fake_slack.of("chat.update")[0]
        action_id = next(e["value"] for b in update.args["blocks"] if b["type"] == "actions" for e in b["elements"])

        message = {"type": "message", "ts": update.args["ts"], "thread_ts": thread, "text": update.args["text"],
                   "blocks": update.args["blocks"], "user": BOT_USER_ID}
        form = block_actions(action_id="pgbot_reject", value=action_id, message=message, user="U0USER0001")
        click = json.loads(urllib.parse.parse_qs(form)["payload"][0])  # Socket Mode sends the JSON itself
        await fake_slack.send_envelope("interactive", click, "0d9e4b4a-1111-4a7e-9d55-000000000002")
        # The card turns to its state line (chat.update), then the outcome is posted in the thread.
        await fake_slack.wait_for(lambda f: len(f.of("chat.update")) >= 2 and len(f.of("chat.postMessage")) >= 2)
        assert fake_slack.of("chat.postMessage")[1].args["thread_ts"] == thread
        await fake_slack.wait_for(lambda f: len(f.acks) >= 2)
        assert [a["envelope_id"] for a in fake_slack.acks[:2]] == [
            "0d9e4b4a-1111-4a7e-9d55-000000000001", "0d9e4b4a-1111-4a7e-9d55-000000000002",
        ]
        assert await shop_agent.health.problems() == []  # /readyz: the socket is connected
    assert await shop_agent.health.problems() == ["slack: not connected"]  # closed with the runner


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "slack.bot_token is not set (PGBOT_SLACK__BOT_TOKEN)"),
        ({"bot_token": "xoxb-1"}, "slack.app_token is not set (PGBOT_SLACK__APP_TOKEN)"),
        ({"bot_token": "xoxb-1", "mode": "http"}, "slack.signing_secret is not set (PGBOT_SLACK__SIGNING_SECRET)"),
    ],
)
async def test_missing_tokens_are_one_clear_line(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await run_slack(IdleAgentDouble(), SlackSettings.model_validate(values))  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


async def get_when_up(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url) as response:
                    return response.status, await response.text()
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never came up")


async def test_http_mode_has_a_health_endpoint_and_refuses_replayed_requests(
    fake_slack: FakeSlack, shop_agent: Agent
) -> None:
    port = free_port()
    async with running(shop_agent, slack_settings(fake_slack, mode="http", http_port=port)):
        assert await get_when_up(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
        body = event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 1", ts=new_ts()))
        # A request captured and sent again later: its signature is valid, but its timestamp is 10 minutes old.
        old = str(int(time.time()) - 600)
        digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{old}:{body}".encode(), hashlib.sha256).hexdigest()
        replayed = {"content-type": "application/json", "x-slack-request-timestamp": old,
                    "x-slack-signature": f"v0={digest}"}
        status, _ = await post_when_up(f"http://127.0.0.1:{port}/slack/events", body, replayed)
        assert status == 401
        forged = signed_headers(body, content_type="application/json", secret="not-the-secret")
        status, _ = await post_when_up(f"http://127.0.0.1:{port}/slack/events", body, forged)
        assert status == 401
        await fake_slack.handled()
        assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []


async def test_pgbot_slack_command_runs_http_mode_from_environment(fake_slack: FakeSlack, fresh_db: str,
                                                                  tmp_path: Path) -> None:
    """`pgbot slack` as a real process, every [slack] setting from PGBOT_SLACK__* variables."""
    port = free_port()
    env = {
        **os.environ, "PGBOT_DATABASES__SHOP__DSN": fresh_db, "PGBOT_SLACK__MODE": "http",
        "PGBOT_SLACK__BOT_TOKEN": "xoxb-from-env", "PGBOT_SLACK__SIGNING_SECRET": SIGNING_SECRET,
        "PGBOT_SLACK__HTTP_PORT": str(port), "PGBOT_SLACK__API_BASE_URL": fake_slack.api_url,
        "PGBOT_SLACK__ALLOWED_CHANNELS": '["C0CHAN0001"]',
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "slack", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert await get_when_up(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
        body = event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 40 + 2 AS answer", ts=new_ts()))
        status, _ = await post_when_up(f"http://127.0.0.1:{port}/slack/events", body,
                                       signed_headers(body, content_type="application/json"))
        assert status == 200
        await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 1)
        assert fake_slack.of("chat.update")[0].authorization == "Bearer xoxb-from-env"
        assert "42" in json.dumps(fake_slack.of("chat.update")[0].args["blocks"])
    finally:
        proc.terminate()
        _, stderr = await proc.communicate()
    assert b"xoxb-from-env" not in stderr and SIGNING_SECRET.encode() not in stderr

"""Fixtures for the Slack adapter: a local fake Slack, a real agent on the real Postgres, and a test double."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters.slack.app import build_slack_app
from bot.wiring import build_agent
from core import Agent, Settings
from core.config import SlackSettings
from tests.adapters.agent_double import ApprovalAgentDouble
from tests.adapters.slack.fake_slack import SIGNING_SECRET, FakeSlack, signed_headers


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


def slack_settings(fake: FakeSlack, **overrides: object) -> SlackSettings:
    values: dict[str, object] = {
        "bot_token": "xoxb-1111-2222-test", "signing_secret": SIGNING_SECRET, "api_base_url": fake.api_url,
    }
    values.update(overrides)
    return SlackSettings.model_validate(values)


@pytest.fixture
async def real_agent(pg_admin_dsn: str) -> AsyncIterator[Agent]:
    """core's real Agent, wired like production, with no model: slash commands run on the real Postgres."""
    agent = build_agent(Settings(databases={"t": {"dsn": pg_admin_dsn}}), use_llm=False)
    yield agent
    await agent.aclose()


@pytest.fixture
def agent_double() -> ApprovalAgentDouble:
    return ApprovalAgentDouble()


async def dispatch(app: AsyncApp, body: str, *, content_type: str = "application/json") -> BoltResponse:
    """Hand a signed request to bolt exactly as its HTTP adapters do."""
    return await app.async_dispatch(
        AsyncBoltRequest(body=body, headers=signed_headers(body, content_type=content_type))
    )


def new_ts() -> str:
    return f"{time.time():.6f}"


__all__ = ["build_slack_app", "dispatch", "new_ts", "slack_settings"]

"""Fixtures for the Slack adapter: a local fake Slack, a real agent on the real Postgres, and a test double."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.wiring import build_agent
from core import Agent, Settings
from tests.adapters.slack.agent_double import ApprovalAgentDouble
from tests.helpers import items_agent


@pytest.fixture
async def real_agent(pg_admin_dsn: str) -> AsyncIterator[Agent]:
    """core's real Agent, wired like production, with no model: slash commands run on the real Postgres."""
    agent = build_agent(Settings(databases={"t": {"dsn": pg_admin_dsn}}), use_llm=False)
    yield agent
    await agent.aclose()


@pytest.fixture
def agent_double() -> ApprovalAgentDouble:
    return ApprovalAgentDouble()


APPROVER = "U0APPROVER"


@pytest.fixture
async def shop_agent(fresh_db: str) -> AsyncIterator[Agent]:
    """The real Agent on a fresh database with one table; changes need approval by ``slack:U0APPROVER``."""
    agent = await items_agent(fresh_db, approver=f"slack:{APPROVER}")
    yield agent
    await agent.aclose()

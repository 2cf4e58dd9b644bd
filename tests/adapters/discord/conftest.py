"""Fixtures for the Discord adapter: the fake REST API, logged-in clients fed real gateway payloads, and a
real Agent on a fresh Postgres database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import discord.http
import pytest

from adapters.discord.bot import PgbotClient, build_discord_client
from bot.wiring import build_agent
from core import Agent
from core.config import DiscordSettings
from tests.adapters.discord.fake_discord import APPROVER_ID, FakeDiscord, guild_create, ready
from tests.helpers import ITEMS_SQL, items_agent, settings_for
from tests.llm_server import ScriptedLlmServer

ClientFactory = Callable[..., Awaitable[PgbotClient]]


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """The fake REST API and gateway; discord.py's class-level URLs are restored afterwards."""
    original, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    server = FakeDiscord()
    await server.start()
    yield server
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = original, gateway
    await server.stop()


@pytest.fixture
async def make_client(fake_discord: FakeDiscord) -> AsyncIterator[ClientFactory]:
    """Build a client with build_discord_client, log it in against the fake, and replay READY + GUILD_CREATE."""
    clients: list[PgbotClient] = []

    async def make(agent: object, **settings: object) -> PgbotClient:
        values: dict[str, object] = {"token": "test-token", "api_base_url": fake_discord.api_url, **settings}
        client = build_discord_client(agent, DiscordSettings.model_validate(values))  # type: ignore[arg-type]
        clients.append(client)
        await client.login("test-token")
        client._connection.guild_ready_timeout = 0.01  # on_ready at once, not 2 s later during teardown
        client._connection.parse_ready(ready())
        client._connection.parse_guild_create(guild_create())
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def shop_agent(fresh_db: str) -> AsyncIterator[Agent]:
    """The real Agent on a fresh database with one table; changes need approval by the approver's Discord id."""
    agent = await items_agent(fresh_db, approver=f"discord:{APPROVER_ID}")
    yield agent
    await agent.aclose()


AgentFactory = Callable[[], Agent]


@pytest.fixture
async def stack(fresh_db: str, redis_url: str, llm_server: ScriptedLlmServer) -> AsyncIterator[AgentFactory]:
    """Real agents wired like production on one fresh database (the 300-row ``items`` table), the real Redis
    and the scripted model server. Each call is a new process's agent: calling it again is a restart."""
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    settings = settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url,
                            approvers={"users": [f"discord:{APPROVER_ID}"]})
    agents: list[Agent] = []

    def make() -> Agent:
        agents.append(build_agent(settings))
        return agents[-1]

    yield make
    for agent in agents:
        await agent.aclose()

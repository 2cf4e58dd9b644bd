"""bot.servers.serve: the observability port is up while the bot runs, and /readyz waits for the chat runner."""

from __future__ import annotations

import aiohttp
import pytest

from bot.servers import serve
from core import Agent
from tests.helpers import settings_for
from tests.services import free_port


async def test_readyz_is_503_until_the_runner_reports_its_connection(fresh_db: str, restore_logging: None) -> None:
    settings = settings_for(fresh_db)
    port = free_port()
    settings.observability.port = port
    seen: list[tuple[int, str]] = []

    async def get(path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
            return r.status, await r.text()

    async def runner(agent: Agent) -> None:  # stands in for run_slack: report, then "connect"
        seen.append(await get("/readyz"))
        connected = [False]
        agent.health.report_chat("slack", lambda: connected[0])
        seen.append(await get("/readyz"))
        connected[0] = True
        seen.append(await get("/readyz"))
        seen.append(await get("/healthz"))

    assert await serve(settings, runner, chat="slack") == 0
    assert seen == [(503, "slack: not connected yet\n"), (503, "slack: not connected\n"), (200, "ready\n"),
                    (200, "ok\n")]
    with pytest.raises(aiohttp.ClientConnectorError):  # stopped with the bot
        await get("/healthz")

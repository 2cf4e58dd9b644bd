"""/healthz, /readyz and /metrics over real HTTP, with a real database and a real agent behind them."""

from __future__ import annotations

import aiohttp

from bot.observability import ObservabilityServer
from bot.wiring import build_agent
from core import Settings
from tests.helpers import final_reply, message


async def test_health_ready_and_metrics(fresh_db: str) -> None:
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}))
    server = ObservabilityServer(agent, host="127.0.0.1", port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        await final_reply(agent, message("/sql SELECT 1"))
        await final_reply(agent, message("/sql DROP DATABASE x"))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200 and await r.text() == "ok\n"
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200 and await r.text() == "ready\n"
            async with http.get(f"{base}/metrics") as r:
                metrics = await r.text()
        assert 'pgbot_replies_total{kind="result"} 1' in metrics
        assert 'pgbot_replies_total{kind="error"} 1' in metrics
        assert "pgbot_turns_running 0" in metrics
    finally:
        await server.stop()
        await agent.aclose()


async def test_readyz_names_what_is_down_without_secrets() -> None:
    agent = build_agent(Settings(databases={"down": {"dsn": "postgresql://u:pw-SECRET@127.0.0.1:1/x",
                                                     "connect_timeout_s": 1}}))
    server = ObservabilityServer(agent, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}/readyz") as r:
            body = await r.text()
        assert r.status == 503
        assert body.startswith("database down: Database 'down' cannot be reached")
        assert "pw-SECRET" not in body
    finally:
        await server.stop()
        await agent.aclose()

"""Wiring: a blank ``${OPENAI_API_KEY}`` (docker-compose.yml's default) means "no model", not an OpenAI client;
every Redis-backed part shares one connection pool, closed once."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.wiring import SharedRedis, build_agent, build_bot, make_llm, shared_redis
from core import Settings
from core.agent.loop import Agent
from core.config import load_settings
from core.schedules import Scheduler
from tests.helpers import settings_for
from tests.integration.test_cli import run_pgbot


@pytest.mark.parametrize("value", ["", "  "])
def test_blank_key_from_the_environment_is_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     value: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", value)
    path = tmp_path / "pgbot.toml"
    path.write_text('[llm]\napi_key = "${OPENAI_API_KEY}"\n', encoding="utf-8")
    assert make_llm(load_settings(path)) is None


async def test_a_real_key_or_a_base_url_still_makes_a_client(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-wiring")
    path = tmp_path / "pgbot.toml"
    path.write_text('[llm]\napi_key = "${OPENAI_API_KEY}"\n', encoding="utf-8")
    for settings in (load_settings(path), Settings(llm={"base_url": "http://127.0.0.1:9/v1"})):
        llm = make_llm(settings)
        assert llm is not None
        await llm.aclose()


async def test_ask_with_the_compose_config_and_no_key_says_what_to_set(tmp_path: Path, fresh_db: str) -> None:
    """deploy/pgbot.toml's `api_key = "${OPENAI_API_KEY}"` with the variable unset, as `docker compose run`."""
    path = tmp_path / "pgbot.toml"
    path.write_text(f'[llm]\napi_key = "${{OPENAI_API_KEY}}"\n\n[databases.shop]\ndsn = "{fresh_db}"\n',
                    encoding="utf-8")
    started = time.monotonic()
    code, out, err = await run_pgbot("ask", "how many orders?", "--config", str(path), home=tmp_path)
    assert "No language model is configured" in out + err and "OPENAI_API_KEY" in out + err
    assert code != 0
    assert time.monotonic() - started < 30  # answered at once, not after an LLM timeout


def redis_parts(agent: Agent, scheduler: Scheduler | None) -> list[aioredis.Redis]:
    """The client of every Redis-backed part the wiring built."""
    assert agent.approvals is not None and scheduler is not None
    parts = [agent.store, agent.approvals._store, agent.accuracy.answers, agent.turns, agent.events,
             agent.ops.quotas, scheduler.claims]
    return [part._redis for part in parts]  # type: ignore[attr-defined]


async def test_every_redis_part_shares_one_pool_closed_once_by_the_last_part(
    fresh_db: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = SharedRedis(redis_url)
    closes: list[int] = []
    close_pool = shared.pool.aclose

    async def counted_close() -> None:
        closes.append(shared.open_clients)
        await close_pool()

    monkeypatch.setattr(shared.pool, "aclose", counted_close)
    agent, scheduler = build_bot(settings_for(fresh_db, redis_url=redis_url), redis=shared)
    clients = redis_parts(agent, scheduler)
    assert len(clients) == shared.open_clients == 7
    assert all(client.connection_pool is shared.pool for client in clients)
    assert scheduler is not None
    assert await agent.events.first_time("test", uuid.uuid4().hex)  # the parts work through the pool,
    assert await scheduler.claims.claim(f"test:{uuid.uuid4().hex}", ttl_s=5)  # the bytes-era ones too
    await agent.store.set_database(f"test:{uuid.uuid4().hex}", "shop")
    await scheduler.claims.aclose()
    assert closes == []  # the agent's parts still use it
    await agent.aclose()
    assert closes == [0] and shared.open_clients == 0


async def test_build_agent_makes_one_pool_and_none_without_redis(fresh_db: str, redis_url: str) -> None:
    agent = build_agent(settings_for(fresh_db, redis_url=redis_url), use_llm=False)
    try:
        assert agent.approvals is not None
        parts = [agent.store, agent.approvals._store, agent.accuracy.answers, agent.turns, agent.events,
                 agent.ops.quotas]
        pools = {id(part._redis.connection_pool) for part in parts}  # type: ignore[attr-defined]
        assert len(pools) == 1
    finally:
        await agent.aclose()
    assert shared_redis(settings_for(fresh_db)) is None

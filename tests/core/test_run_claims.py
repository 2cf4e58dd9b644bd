"""Memory and Redis schedule-run claims pass the same suite (Redis: the real server; release is a Lua script,
which fakeredis runs only with the optional ``lupa`` package, so it is not used here).

A due run is claimed once until the claim expires or its holder releases it; replicas share Redis claims,
and one replica can never release another's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from core.errors import ScheduleError
from core.schedules import MemoryRunClaims, RedisRunClaims, RunClaims
from tests.helpers import eventually
from tests.services import delete_keys, store_client


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    value = f"pgbot:test:{uuid.uuid4().hex}:run"
    yield value
    await delete_keys(redis_url, f"{value}:*")


@pytest.fixture(params=["memory", "redis"])
async def claims(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> AsyncIterator[RunClaims]:
    made: RunClaims = MemoryRunClaims() if request.param == "memory" else RedisRunClaims(
        store_client(redis_url), prefix=prefix)
    yield made
    await made.aclose()


def due() -> str:
    return f"{uuid.uuid4().hex}:2026-03-30T09:00"


async def test_a_run_is_claimed_once_until_released(claims: RunClaims) -> None:
    key = due()
    assert await claims.claim(key, ttl_s=60)
    assert not await claims.claim(key, ttl_s=60)
    assert await claims.claim(due(), ttl_s=60)  # another run is free
    await claims.release(key)
    assert await claims.claim(key, ttl_s=60)
    await claims.release(due())  # releasing what is not held does nothing


async def test_concurrent_claims_have_one_winner(claims: RunClaims) -> None:
    key = due()
    won = await asyncio.gather(*(claims.claim(key, ttl_s=60) for _ in range(20)))
    assert won.count(True) == 1


async def test_a_claim_expires_so_a_dead_holders_run_happens_later(claims: RunClaims) -> None:
    key = due()
    assert await claims.claim(key, ttl_s=0.3)
    assert not await claims.claim(key, ttl_s=0.3)
    await eventually(lambda: claims.claim(key, ttl_s=60), what="the claim to expire", within_s=5)


async def test_replicas_share_claims_and_cannot_release_each_others(redis_url: str, prefix: str) -> None:
    one, two = (RedisRunClaims(store_client(redis_url), prefix=prefix) for _ in range(2))
    try:
        key = due()
        assert await two.claim(key, ttl_s=0.3)  # two claims, stalls past its TTL; one takes the run over
        assert not await one.claim(key, ttl_s=60)
        await eventually(lambda: one.claim(key, ttl_s=60), what="two's claim to expire", within_s=5)
        await two.release(key)  # two still holds a token for the key, but the claim is one's now: it stays
        assert not await two.claim(key, ttl_s=60)
        await one.release(key)
        assert await two.claim(key, ttl_s=60)
    finally:
        await one.aclose()
        await two.aclose()


async def test_without_redis_nothing_is_claimed() -> None:
    dead = RedisRunClaims(store_client("redis://127.0.0.1:9/0", timeout_s=0.5))
    try:
        with pytest.raises(ScheduleError, match="Redis cannot be reached"):
            await dead.claim(due(), ttl_s=60)
    finally:
        await dead.aclose()

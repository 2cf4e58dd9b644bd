"""Memory and Redis event logs pass the same suite (Redis: the real server and fakeredis; no Lua is involved).

An event is handled once: the first claim of ``<platform>:<id>`` within the TTL wins, every later one loses;
with Redis the claim fails closed (an error, never a second run) when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import fakeredis
import pytest

from core.errors import ContextUnavailableError
from core.threads.dedupe import EventLog, MemoryEventLog, RedisEventLog
from tests.helpers import eventually
from tests.services import delete_keys, store_client

TTL_S = 1  # the shortest TTL Redis keeps (EX takes whole seconds)


@pytest.fixture(params=["memory", "redis", "fakeredis"])
async def events(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[EventLog]:
    log: EventLog
    if request.param == "memory":
        log = MemoryEventLog(ttl_s=TTL_S)
    elif request.param == "fakeredis":
        log = RedisEventLog(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True),
                            ttl_s=TTL_S)
    else:
        prefix = f"pgbot:test:{uuid.uuid4().hex}:event"
        log = RedisEventLog(store_client(redis_url), ttl_s=TTL_S, prefix=prefix)
    yield log
    await log.aclose()
    if request.param == "redis":
        await delete_keys(redis_url, f"{prefix}:*")


async def test_the_first_claim_wins_and_a_redelivery_loses(events: EventLog) -> None:
    event = uuid.uuid4().hex
    assert await events.first_time("slack", event)
    assert not await events.first_time("slack", event)
    assert await events.first_time("discord", event)  # another platform's id space
    assert await events.first_time("slack", uuid.uuid4().hex)


async def test_twenty_concurrent_deliveries_run_once(events: EventLog) -> None:
    event = uuid.uuid4().hex
    claims = await asyncio.gather(*(events.first_time("slack", event) for _ in range(20)))
    assert claims.count(True) == 1


async def test_a_claim_expires_with_its_ttl(events: EventLog) -> None:
    event = uuid.uuid4().hex
    assert await events.first_time("slack", event)
    assert not await events.first_time("slack", event)
    await eventually(lambda: events.first_time("slack", event), what="the claim to expire", within_s=5)


async def test_redis_that_stops_answering_fails_closed() -> None:
    server = fakeredis.FakeServer()
    log = RedisEventLog(fakeredis.FakeAsyncRedis(server=server, decode_responses=True), ttl_s=60)
    try:
        assert await log.first_time("slack", "e1")
        server.connected = False
        with pytest.raises(ContextUnavailableError):
            await log.first_time("slack", "e2")
        server.connected = True
        assert not await log.first_time("slack", "e1") and await log.first_time("slack", "e2")
    finally:
        await log.aclose()

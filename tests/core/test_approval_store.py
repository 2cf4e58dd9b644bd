"""Redis and in-memory approval stores pass the same suite (Redis: the real server, a unique key prefix)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from core.approvals.store import (
    ActionStatus,
    ApprovalStore,
    Decision,
    MemoryApprovalStore,
    RedisApprovalStore,
)
from core.errors import ApprovalStoreUnavailableError
from tests.helpers import eventually
from tests.services import delete_keys, store_client

DEAD_REDIS = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    value = f"pgbot:test:{uuid.uuid4().hex}"
    yield value
    await delete_keys(redis_url, f"{value}:*")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> AsyncIterator[ApprovalStore]:
    if request.param == "memory":
        memory = MemoryApprovalStore()
        yield memory
        await memory.aclose()
        return
    redis_store = RedisApprovalStore(store_client(redis_url), prefix=prefix)
    yield redis_store
    await redis_store.aclose()


def decision(status: ActionStatus = ActionStatus.EXECUTING, by: str = "slack:UDBA", **extra: object) -> Decision:
    return Decision(status=status, decided_by=by, decided_at=time.time(), **extra)  # type: ignore[arg-type]


def new_id() -> str:
    return uuid.uuid4().hex


async def test_put_and_get_round_trip(store: ApprovalStore) -> None:
    action_id = new_id()
    await store.put(action_id, '{"sql": "DELETE FROM t"}', ttl_s=60)
    stored = await store.get(action_id)
    assert stored is not None
    assert stored.payload == '{"sql": "DELETE FROM t"}'
    assert stored.decision is None
    assert await store.get(new_id()) is None


async def test_first_claim_wins_and_later_ones_see_it(store: ApprovalStore) -> None:
    action_id = new_id()
    await store.put(action_id, "{}", ttl_s=60)
    first = await store.claim(action_id, decision(by="slack:A"))
    second = await store.claim(action_id, decision(ActionStatus.REJECTED, by="slack:B"))
    assert first.won and not first.missing
    assert not second.won and second.standing is not None
    assert second.standing.decided_by == "slack:A" and second.standing.status is ActionStatus.EXECUTING
    stored = await store.get(action_id)
    assert stored is not None and stored.decision == second.standing


async def test_twenty_concurrent_claims_have_exactly_one_winner(store: ApprovalStore) -> None:
    action_id = new_id()
    await store.put(action_id, "{}", ttl_s=60)
    claims = await asyncio.gather(*(store.claim(action_id, decision(by=f"slack:U{i}")) for i in range(20)))
    winners = [c for c in claims if c.won]
    assert len(winners) == 1
    standing = {c.standing.decided_by for c in claims if c.standing is not None}
    assert len(standing) == 1 and len([c for c in claims if c.standing is not None]) == 19


async def test_finish_records_the_outcome_of_the_claim(store: ApprovalStore) -> None:
    action_id = new_id()
    await store.put(action_id, "{}", ttl_s=60)
    assert (await store.claim(action_id, decision())).won
    done = decision(ActionStatus.EXECUTED, result="DELETE 3", rows_affected=3, duration_ms=4.5)
    await store.finish(action_id, done)
    stored = await store.get(action_id)
    assert stored is not None and stored.decision == done
    again = await store.claim(action_id, decision(by="slack:late"))
    assert not again.won and again.standing == done


async def test_finish_without_a_claim_records_nothing(store: ApprovalStore) -> None:
    action_id = new_id()
    await store.put(action_id, "{}", ttl_s=60)
    await store.finish(action_id, decision(ActionStatus.EXECUTED))
    stored = await store.get(action_id)
    assert stored is not None and stored.decision is None
    assert (await store.claim(action_id, decision())).won


async def test_claim_on_a_missing_action_is_refused(store: ApprovalStore) -> None:
    claim = await store.claim(new_id(), decision())
    assert not claim.won and claim.missing and claim.standing is None


async def test_actions_expire(store: ApprovalStore) -> None:
    action_id = new_id()
    await store.put(action_id, "{}", ttl_s=1)
    assert await store.get(action_id) is not None

    async def expired() -> bool:
        return await store.get(action_id) is None

    await eventually(expired, what="the action to expire", within_s=5)
    claim = await store.claim(action_id, decision())
    assert claim.missing and not claim.won


async def test_redis_decision_outlives_its_action(redis_url: str, prefix: str) -> None:
    store = RedisApprovalStore(store_client(redis_url), prefix=prefix)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        action_id = new_id()
        await store.put(action_id, "{}", ttl_s=100)
        await store.claim(action_id, decision())
        await store.finish(action_id, decision(ActionStatus.EXECUTED, result="DELETE 1"))
        action_ttl = await client.pttl(store.action_key(action_id))
        claim_ttl = await client.pttl(store.claim_key(action_id))
        assert 0 < action_ttl <= 100_000
        assert claim_ttl > action_ttl  # KEEPTTL on finish, and the claim outlives the action
    finally:
        await client.aclose()
        await store.aclose()


async def test_two_replicas_sharing_redis_have_one_winner(redis_url: str, prefix: str) -> None:
    replicas = [RedisApprovalStore(store_client(redis_url), prefix=prefix) for _ in range(2)]
    try:
        action_id = new_id()
        await replicas[0].put(action_id, "{}", ttl_s=60)
        claims = await asyncio.gather(*(replicas[i % 2].claim(action_id, decision(by=f"slack:R{i}"))
                                        for i in range(20)))
        assert sum(c.won for c in claims) == 1
    finally:
        for replica in replicas:
            await replica.aclose()


async def test_an_unreadable_decision_still_counts_as_decided(redis_url: str, prefix: str) -> None:
    store = RedisApprovalStore(store_client(redis_url), prefix=prefix)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        action_id = new_id()
        await store.put(action_id, "{}", ttl_s=60)
        await client.set(store.claim_key(action_id), "not json", ex=60)
        stored = await store.get(action_id)
        assert stored is not None and stored.decision is not None
        assert stored.decision.status is ActionStatus.FAILED
        assert not (await store.claim(action_id, decision())).won
    finally:
        await client.aclose()
        await store.aclose()


async def test_redis_down_fails_closed_with_a_clear_error() -> None:
    store = RedisApprovalStore(store_client(DEAD_REDIS, timeout_s=0.5))
    try:
        for call in (store.get(new_id()), store.claim(new_id(), decision()), store.put(new_id(), "{}", ttl_s=5),
                     store.finish(new_id(), decision())):
            with pytest.raises(ApprovalStoreUnavailableError) as caught:
                await call
            assert "nothing was run" in caught.value.user_message
    finally:
        await store.aclose()

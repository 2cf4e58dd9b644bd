"""Rate limits and the daily token budget: the Redis (real server) and memory implementations pass the same tests."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from redis import asyncio as aioredis

from core import Message
from core.errors import QuotaError
from core.ops.quotas import MemoryQuotas, QuotaPolicy, Quotas, RedisQuotas
from tests.services import store_client

START = dt.datetime(2026, 11, 29, 21, 0, tzinfo=dt.UTC).timestamp()  # three hours before midnight UTC


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class CountingRedis(aioredis.Redis):
    """The real client, counting the commands it sends (to prove one round trip per message)."""

    commands: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]))
        return await super().execute_command(*args, **options)


def counting_client(url: str) -> CountingRedis:
    client = CountingRedis.from_url(url)
    client.commands = []
    return client


@pytest.fixture(params=["redis", "memory"])
async def quotas_factory(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Any]:
    """``make(policy, clock)`` for the implementation under test; everything made is closed afterwards."""
    made: list[Quotas] = []

    def make(policy: QuotaPolicy, clock: Clock) -> Quotas:
        quotas: Quotas
        if request.param == "redis":
            quotas = RedisQuotas(counting_client(redis_url), policy, clock=clock)
        else:
            quotas = MemoryQuotas(policy, clock=clock)
        made.append(quotas)
        return quotas

    yield make
    for quotas in made:
        await quotas.aclose()


def msg(*, user: str = "U1", channel: str = "C1", workspace: str, text: str = "how many orders?") -> Message:
    return Message(platform="slack", workspace=workspace, channel=channel, thread="t", user=user, text=text)


def unique_workspace() -> str:
    return f"T{uuid.uuid4().hex[:10]}"


async def test_user_limit_refuses_with_the_wait_then_refills(quotas_factory: Any) -> None:
    clock = Clock()
    quotas = quotas_factory(QuotaPolicy(user_per_minute=3), clock)
    ws = unique_workspace()
    for _ in range(3):
        await quotas.admit(msg(workspace=ws), uses_llm=True)
    with pytest.raises(QuotaError) as caught:
        await quotas.admit(msg(workspace=ws), uses_llm=True)
    assert caught.value.user_message == "You've sent 3 messages in the last minute; try again in 20 s."
    assert caught.value.limit == "user"
    await quotas.admit(msg(workspace=ws, user="U2"), uses_llm=True)  # another user is not affected
    clock.now += 15
    with pytest.raises(QuotaError, match="try again in 5 s"):
        await quotas.admit(msg(workspace=ws), uses_llm=True)
    clock.now += 5  # one token back after 60 s / 3
    await quotas.admit(msg(workspace=ws), uses_llm=True)
    with pytest.raises(QuotaError):
        await quotas.admit(msg(workspace=ws), uses_llm=True)


async def test_channel_limit_counts_every_user_and_a_refusal_consumes_nothing(quotas_factory: Any) -> None:
    clock = Clock()
    quotas = quotas_factory(QuotaPolicy(user_per_minute=2, channel_per_minute=3), clock)
    ws = unique_workspace()
    await quotas.admit(msg(workspace=ws, user="A"), uses_llm=False)
    await quotas.admit(msg(workspace=ws, user="A"), uses_llm=False)
    with pytest.raises(QuotaError) as by_user:  # A is over, and this refusal must not take a channel token
        await quotas.admit(msg(workspace=ws, user="A"), uses_llm=False)
    assert by_user.value.limit == "user"
    await quotas.admit(msg(workspace=ws, user="B"), uses_llm=False)  # the channel's third
    with pytest.raises(QuotaError) as by_channel:
        await quotas.admit(msg(workspace=ws, user="C"), uses_llm=False)
    assert by_channel.value.limit == "channel"
    assert by_channel.value.user_message == (
        "This channel has sent pgbot 3 messages in the last minute; try again in 20 s.")
    await quotas.admit(msg(workspace=ws, user="C", channel="C2"), uses_llm=False)  # other channels are free
    clock.now += 20
    await quotas.admit(msg(workspace=ws, user="C"), uses_llm=False)  # C's refusal took none of C's tokens


async def test_daily_budget_counts_reported_tokens_per_workspace_and_resets_at_midnight(quotas_factory: Any) -> None:
    clock = Clock()
    quotas = quotas_factory(QuotaPolicy(daily_tokens=1000), clock)
    ws, other = unique_workspace(), unique_workspace()
    await quotas.spend(f"slack:{ws}", 600)
    await quotas.admit(msg(workspace=ws), uses_llm=True)
    await quotas.spend(f"slack:{ws}", 400)
    with pytest.raises(QuotaError) as caught:
        await quotas.admit(msg(workspace=ws), uses_llm=True)
    assert caught.value.limit == "budget"
    assert caught.value.user_message.startswith(
        "This workspace has used its daily budget of 1,000 tokens; it resets at 00:00 UTC (in 3 h 0 min).")
    await quotas.admit(msg(workspace=ws, text="/sql SELECT 1"), uses_llm=False)  # no model: not refused
    await quotas.admit(msg(workspace=other), uses_llm=True)  # another workspace has its own budget
    clock.now += 3 * 3600  # 00:00 UTC
    await quotas.admit(msg(workspace=ws), uses_llm=True)


async def test_replicas_share_buckets_and_budget_through_redis(redis_url: str) -> None:
    clock = Clock()
    policy = QuotaPolicy(user_per_minute=2, daily_tokens=100)
    one = RedisQuotas(counting_client(redis_url), policy, clock=clock)
    two = RedisQuotas(counting_client(redis_url), policy, clock=clock)
    ws = unique_workspace()
    try:
        await one.admit(msg(workspace=ws), uses_llm=True)
        await two.admit(msg(workspace=ws), uses_llm=True)
        with pytest.raises(QuotaError, match="You've sent 2 messages"):
            await one.admit(msg(workspace=ws), uses_llm=True)
        await one.spend(f"slack:{ws}", 100)
        clock.now += 60
        with pytest.raises(QuotaError, match="daily budget of 100 tokens"):
            await two.admit(msg(workspace=ws), uses_llm=True)
        raw = aioredis.Redis.from_url(redis_url)
        try:
            keys = [k.decode() async for k in raw.scan_iter(match=f"pgbot:quota:*{ws}*")]
            assert len(keys) == 2  # the user's bucket and today's counter (the refused one wrote nothing else)
            for key in keys:
                ttl = await raw.ttl(key)
                assert 0 < ttl <= 2 * 24 * 3600, (key, ttl)
        finally:
            await raw.aclose()
    finally:
        await one.aclose()
        await two.aclose()


async def test_one_round_trip_per_message_and_none_when_limits_are_off(redis_url: str) -> None:
    clock = Clock()
    client = counting_client(redis_url)
    quotas = RedisQuotas(client, QuotaPolicy(user_per_minute=5, channel_per_minute=5, daily_tokens=10_000),
                         clock=clock)
    ws = unique_workspace()
    try:
        await quotas.admit(msg(workspace=ws), uses_llm=True)  # first use may load the script (NOSCRIPT + EVAL)
        client.commands.clear()
        await quotas.admit(msg(workspace=ws), uses_llm=True)
        assert client.commands == ["EVALSHA"]
    finally:
        await quotas.aclose()
    off = RedisQuotas(counting_client("redis://127.0.0.1:1/0"), QuotaPolicy(), clock=clock)  # nothing listens
    await off.admit(msg(workspace=ws), uses_llm=True)
    await off.spend("slack:T", 1000)
    await off.aclose()


async def test_redis_down_lets_messages_through_and_says_so_in_the_log() -> None:
    quotas = RedisQuotas(store_client("redis://127.0.0.1:1/0"), QuotaPolicy(user_per_minute=1, daily_tokens=10))
    try:
        with structlog.testing.capture_logs() as logs:
            await quotas.admit(msg(workspace=unique_workspace()), uses_llm=True)
            await quotas.spend("slack:T", 5)
        events = [e["event"] for e in logs]
        assert events == ["quota_check_unavailable", "token_budget_unavailable"]
    finally:
        await quotas.aclose()

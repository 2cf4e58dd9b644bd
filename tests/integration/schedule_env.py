"""Replicas of the scheduler for tests: each with its own pools and Redis client (like a process), one shared
Postgres and Redis, a clock moved by hand, and an outbox that keeps what each was asked to post."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest

from core import Reply, Settings
from core.config import ScheduleSettings
from core.db.registry import DatabaseRegistry
from core.schedules import Destination, ManualClock, RedisRunClaims, Scheduler, Schedules
from core.sqlguard import SqlGuard
from tests.services import delete_keys, store_client

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_8 = dt.datetime(2026, 3, 30, 8, 0, tzinfo=BERLIN)  # a Monday, after the spring change
HERE = Destination(platform="slack", workspace="T1", channel="C1", thread="1700000000.000100")


class Outbox:
    """A :class:`core.schedules.Sender` that keeps what it was asked to post (the Slack and Discord senders are
    tested against their stand-ins in tests/adapters)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Destination, tuple[Reply, ...]]] = []

    def ready(self) -> bool:
        return True

    async def send(self, destination: Destination, replies: Sequence[Reply]) -> None:
        self.sent.append((destination, tuple(replies)))

    async def current_groups(self, destination: Destination, identity: str) -> tuple[str, ...] | None:
        return None

    @property
    def texts(self) -> list[str]:
        return [reply.text for _, replies in self.sent for reply in replies]


@dataclass
class Replica:
    scheduler: Scheduler
    outbox: Outbox
    claims: RedisRunClaims

    @property
    def schedules(self) -> Schedules:
        return self.scheduler.schedules


@dataclass
class ScheduleEnv:
    redis_url: str
    clock: ManualClock = field(default_factory=lambda: ManualClock(MONDAY_8))
    prefix: str = field(default_factory=lambda: f"pgbot:test:schedule:{uuid.uuid4().hex}")
    replicas: list[Replica] = field(default_factory=list)

    def replica(self, settings: Settings) -> Replica:
        """A new scheduler process: its own pools and Redis client, reading schedules from Postgres."""
        settings = with_berlin(settings)
        schedules = Schedules(settings=settings, databases=DatabaseRegistry(settings), guard=SqlGuard(),
                              clock=self.clock)
        outbox = Outbox()
        schedules.senders.register("slack", outbox)
        claims = RedisRunClaims(store_client(self.redis_url), prefix=self.prefix)
        replica = Replica(Scheduler(schedules=schedules, claims=claims, clock=self.clock), outbox, claims)
        self.replicas.append(replica)
        return replica

    async def stop(self, replica: Replica) -> None:
        """The process ends: pools and Redis client closed (nothing else is cleaned up, as after a crash)."""
        await replica.schedules.databases.aclose()
        await replica.scheduler.claims.aclose()
        self.replicas.remove(replica)


def with_berlin(settings: Settings) -> Settings:
    return settings.model_copy(update={"schedules": ScheduleSettings(timezone="Europe/Berlin")})


@pytest.fixture(name="schedule_env")
async def schedule_env_fixture(redis_url: str) -> AsyncIterator[ScheduleEnv]:
    env = ScheduleEnv(redis_url=redis_url)
    try:
        yield env
    finally:
        for replica in list(env.replicas):
            await env.stop(replica)
        await delete_keys(redis_url, f"{env.prefix}:*")

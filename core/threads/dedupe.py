"""Platform events handled once: Slack retries a delivery, Discord replays events on resume, and two replicas
may both receive one message. The first replica to claim ``pgbot:event:<platform>:<id>`` handles it.

Claims fail closed: when Redis cannot be reached the message is answered with that error and not run, so
an outage can never make an event run twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.errors import ContextUnavailableError


class EventLog(Protocol):
    async def first_time(self, platform: str, event_id: str) -> bool:
        """Claim the event; True only for the first claim within the TTL."""
        ...

    async def aclose(self) -> None: ...


class MemoryEventLog:
    """One process's claims, bounded and expiring (a single bot without Redis)."""

    def __init__(self, *, ttl_s: int, max_events: int = 100_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_events
        self._seen: OrderedDict[str, float] = OrderedDict()

    async def first_time(self, platform: str, event_id: str) -> bool:
        now = time.monotonic()
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        key = f"{platform}:{event_id}"
        if key in self._seen:
            return False
        self._seen[key] = now + self._ttl_s
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return True

    async def aclose(self) -> None:
        self._seen.clear()


class RedisEventLog:
    """``SET pgbot:event:<platform>:<id> 1 NX EX ttl``: one round trip per event."""

    def __init__(self, client: aioredis.Redis, *, ttl_s: int, prefix: str = "pgbot:event") -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def first_time(self, platform: str, event_id: str) -> bool:
        try:
            return bool(await self._redis.set(f"{self._prefix}:{platform}:{event_id}", 1, nx=True, ex=self._ttl_s))
        except (RedisError, OSError) as exc:
            raise ContextUnavailableError() from exc

    async def aclose(self) -> None:
        await self._redis.aclose()

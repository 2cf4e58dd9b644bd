"""Each due run happens once across replicas: the first to ``SET pgbot:schedule:run:<id>:<due> NX PX ttl`` runs it.

A replica that claimed a run and died leaves the claim to expire (``[schedules] claim_ttl_s``); the schedule
is still due in Postgres, so the next tick of any replica claims it again and runs it, labelled late. A run
is therefore never lost to a crash; it may be posted twice only if a replica died after posting and before
recording the run (a window of one UPDATE). Claims fail closed: without Redis nothing runs.
"""

from __future__ import annotations

import secrets
import time
from typing import Protocol

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from core.errors import ScheduleError

log = structlog.get_logger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RunClaims(Protocol):
    async def claim(self, key: str, *, ttl_s: float) -> bool:
        """True for the one caller that may run ``key`` until the claim expires."""
        ...

    async def release(self, key: str) -> None:
        """Give up a claim this process holds (a run cancelled before it posted), so another may take it."""
        ...

    async def aclose(self) -> None: ...


class MemoryRunClaims:
    """One process's claims (a single bot without Redis)."""

    def __init__(self) -> None:
        self._held: dict[str, float] = {}

    async def claim(self, key: str, *, ttl_s: float) -> bool:
        now = time.monotonic()
        self._held = {k: until for k, until in self._held.items() if until > now}
        if key in self._held:
            return False
        self._held[key] = now + ttl_s
        return True

    async def release(self, key: str) -> None:
        self._held.pop(key, None)

    async def aclose(self) -> None:
        self._held.clear()


class RedisRunClaims:
    """Claims shared by every replica; each holds a random token, so it can only release its own."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "pgbot:schedule:run") -> None:
        self._redis = client
        self._prefix = prefix
        self._tokens: dict[str, str] = {}

    def key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def claim(self, key: str, *, ttl_s: float) -> bool:
        token = secrets.token_hex(8)
        try:
            taken = await self._redis.set(self.key(key), token, nx=True, px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            raise ScheduleError("pgbot's Redis cannot be reached, so no scheduled run is claimed.") from exc
        if taken:
            self._tokens[key] = token
        return bool(taken)

    async def release(self, key: str) -> None:
        token = self._tokens.pop(key, None)
        if token is None:
            return
        try:
            await self._redis.eval(_RELEASE, 1, self.key(key), token)
        except (RedisError, OSError) as exc:  # the claim then expires on its own; the run happens later
            log.warning("schedule_claim_not_released", key=key, error=type(exc).__name__)

    async def aclose(self) -> None:
        await self._redis.aclose()

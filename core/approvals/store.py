"""Where pending changes and their decisions live between "proposed" and "decided".

The store keeps two things per action: the action itself (opaque JSON written by :mod:`core.approvals.decisions`) and
at most one :class:`Decision`. :meth:`ApprovalStore.claim` records the decision only if none exists yet, in
one atomic step (a Lua script in Redis, a lock in memory), so exactly one click wins even when people click
together, double-click, or two bot replicas receive the click. The decision outlives the action, so later
clicks are told who decided what and when.

Two implementations pass the same test suite: :class:`RedisApprovalStore` (shared by every replica) and
:class:`MemoryApprovalStore` (the terminal, when no Redis URL is configured).
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.exceptions import RedisError

from core.errors import ApprovalStoreUnavailableError

CLAIM_GRACE_MS = 60_000  # a decision outlives its action, so no click ever finds an action without it


class ActionStatus(enum.StrEnum):
    EXECUTING = "executing"  # approved and claimed; the statement is running (or the runner died mid-way)
    EXECUTED = "executed"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Decision(BaseModel):
    """The one decision an action gets; later updates only fill in the outcome."""

    model_config = ConfigDict(frozen=True)

    status: ActionStatus
    decided_by: str
    decided_at: float
    result: str = ""
    rows_affected: int | None = None
    duration_ms: float | None = None


@dataclass(frozen=True, slots=True)
class StoredAction:
    payload: str  # the action's JSON, exactly as stored (it may have been altered: the caller checks)
    decision: Decision | None


@dataclass(frozen=True, slots=True)
class Claim:
    """Outcome of :meth:`ApprovalStore.claim`: ``won``, or the decision that already stands."""

    won: bool
    standing: Decision | None = None
    missing: bool = False  # the action expired out of the store (or never existed)


class ApprovalStore(Protocol):
    async def put(self, action_id: str, payload: str, *, ttl_s: int) -> None: ...

    async def get(self, action_id: str) -> StoredAction | None: ...

    async def claim(self, action_id: str, decision: Decision) -> Claim: ...

    async def finish(self, action_id: str, decision: Decision) -> None: ...

    async def aclose(self) -> None: ...


def _decision(raw: str | bytes | None) -> Decision | None:
    if raw is None:
        return None
    try:
        return Decision.model_validate_json(raw)
    except ValidationError:
        # An unreadable decision still means "decided": never let it reopen the action.
        return Decision(status=ActionStatus.FAILED, decided_by="(unknown)", decided_at=0.0,
                        result="the stored decision is unreadable")


class MemoryApprovalStore:
    """In-process store with the Redis store's semantics; one lock makes claims atomic."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._actions: dict[str, tuple[float, str]] = {}  # id -> (monotonic deadline, payload)
        self._decisions: dict[str, tuple[float, str]] = {}

    @staticmethod
    def _live(entry: tuple[float, str] | None) -> str | None:
        return entry[1] if entry is not None and time.monotonic() < entry[0] else None

    async def put(self, action_id: str, payload: str, *, ttl_s: int) -> None:
        async with self._lock:
            self._actions[action_id] = (time.monotonic() + ttl_s, payload)

    async def get(self, action_id: str) -> StoredAction | None:
        async with self._lock:
            payload = self._live(self._actions.get(action_id))
            if payload is None:
                return None
            return StoredAction(payload=payload, decision=_decision(self._live(self._decisions.get(action_id))))

    async def claim(self, action_id: str, decision: Decision) -> Claim:
        async with self._lock:
            action = self._actions.get(action_id)
            if self._live(action) is None or action is None:
                return Claim(won=False, missing=True)
            standing = _decision(self._live(self._decisions.get(action_id)))
            if standing is not None:
                return Claim(won=False, standing=standing)
            self._decisions[action_id] = (action[0] + CLAIM_GRACE_MS / 1000, decision.model_dump_json())
            return Claim(won=True)

    async def finish(self, action_id: str, decision: Decision) -> None:
        async with self._lock:
            entry = self._decisions.get(action_id)
            if entry is not None:
                self._decisions[action_id] = (entry[0], decision.model_dump_json())

    async def aclose(self) -> None:
        async with self._lock:
            self._actions.clear()
            self._decisions.clear()


# KEYS[1] = action, KEYS[2] = claim; ARGV[1] = decision JSON, ARGV[2] = grace (ms).
# Returns {1} when this call won, {0, standing} when a decision exists, {-1} when the action is gone.
_CLAIM_LUA = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return {-1} end
local standing = redis.call('GET', KEYS[2])
if standing then return {0, standing} end
if ttl < 0 then ttl = 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl + tonumber(ARGV[2]))
return {1}
"""


class RedisApprovalStore:
    """Actions at ``{prefix}:{id}``, decisions at ``{prefix}:{id}:claim``; both expire."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "pgbot:action") -> None:
        self._redis = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM_LUA)

    def action_key(self, action_id: str) -> str:
        return f"{self._prefix}:{action_id}"

    def claim_key(self, action_id: str) -> str:
        return f"{self._prefix}:{action_id}:claim"

    async def put(self, action_id: str, payload: str, *, ttl_s: int) -> None:
        try:
            await self._redis.set(self.action_key(action_id), payload, ex=ttl_s)
        except (RedisError, OSError) as exc:
            raise ApprovalStoreUnavailableError() from exc

    async def get(self, action_id: str) -> StoredAction | None:
        try:
            payload, decision = await self._redis.mget([self.action_key(action_id), self.claim_key(action_id)])
        except (RedisError, OSError) as exc:
            raise ApprovalStoreUnavailableError() from exc
        if payload is None:
            return None
        return StoredAction(payload=str(payload), decision=_decision(decision))

    async def claim(self, action_id: str, decision: Decision) -> Claim:
        try:
            answer = await self._claim(
                keys=[self.action_key(action_id), self.claim_key(action_id)],
                args=[decision.model_dump_json(), CLAIM_GRACE_MS],
            )
        except (RedisError, OSError) as exc:
            raise ApprovalStoreUnavailableError() from exc
        code = int(answer[0])
        if code == 1:
            return Claim(won=True)
        if code == -1:
            return Claim(won=False, missing=True)
        return Claim(won=False, standing=_decision(answer[1]))

    async def finish(self, action_id: str, decision: Decision) -> None:
        try:
            await self._redis.set(self.claim_key(action_id), decision.model_dump_json(), xx=True, keepttl=True)
        except (RedisError, OSError) as exc:
            raise ApprovalStoreUnavailableError() from exc

    async def aclose(self) -> None:
        await self._redis.aclose()

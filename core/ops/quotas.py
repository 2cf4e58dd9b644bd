"""Rate limits and the daily token budget: ``[limits] user_messages_per_minute``,
``channel_messages_per_minute`` and ``daily_tokens_per_workspace`` (0 switches each off; all are off by default).

Rate limits are token buckets: a user (or channel) may send up to N messages at once, and gets one more every
60/N seconds, so "N per minute" holds over any minute without a fixed window's burst at its edges. The budget
counts the tokens the model endpoint reports (``usage``) per workspace and UTC day. With Redis configured
every replica shares the buckets and counters: one Lua script checks both buckets and reads the day's tokens
in a single round trip per message, and consumes nothing when a limit refuses. Without Redis (the terminal)
the same rules run in memory. A turn that starts under the budget is allowed to finish; the next one is
refused. If Redis does not answer, messages are let through (logged): a rate limit must not turn a Redis
hiccup into an outage of its own.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from core.errors import QuotaError
from core.messages import Message

if TYPE_CHECKING:
    from core.config import LimitsSettings

log = structlog.get_logger(__name__)

WINDOW_MS = 60_000
BUDGET_TTL_S = 2 * 24 * 3600  # a day's counter outlives its day, so a replica with a skewed clock still sees it
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    user_per_minute: int = 0
    channel_per_minute: int = 0
    daily_tokens: int = 0

    @classmethod
    def from_settings(cls, limits: LimitsSettings) -> QuotaPolicy:
        return cls(user_per_minute=limits.user_messages_per_minute,
                   channel_per_minute=limits.channel_messages_per_minute,
                   daily_tokens=limits.daily_tokens_per_workspace)

    @property
    def rate_limited(self) -> bool:
        return self.user_per_minute > 0 or self.channel_per_minute > 0


class Quotas(Protocol):
    """``admit`` raises :class:`QuotaError` with the message to show; ``spend`` charges a workspace's day."""

    policy: QuotaPolicy

    async def admit(self, message: Message, *, uses_llm: bool) -> None: ...

    async def spend(self, workspace: str, tokens: int) -> None: ...

    async def aclose(self) -> None: ...


def workspace_key(message: Message) -> str:
    return f"{message.platform}:{message.workspace}"


def utc_day(now: float) -> dt.date:
    return dt.datetime.fromtimestamp(now, dt.UTC).date()


@dataclass(frozen=True, slots=True)
class _Verdict:
    limited: str | None  # "user", "channel" or None
    wait_ms: int
    tokens_used: int


def _raise_for(verdict: _Verdict, policy: QuotaPolicy, *, now: float, uses_llm: bool) -> None:
    if verdict.limited is not None:
        wait = max(1, math.ceil(verdict.wait_ms / 1000))
        if verdict.limited == "user":
            n = policy.user_per_minute
            text = f"You've sent {n} message{'s' if n != 1 else ''} in the last minute; try again in {wait} s."
        else:
            n = policy.channel_per_minute
            text = (f"This channel has sent pgbot {n} message{'s' if n != 1 else ''} in the last minute; "
                    f"try again in {wait} s.")
        raise QuotaError(text, limit=verdict.limited)
    if uses_llm and policy.daily_tokens and verdict.tokens_used >= policy.daily_tokens:
        midnight = dt.datetime.combine(utc_day(now) + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
        left = max(60, int(midnight - now))
        raise QuotaError(
            f"This workspace has used its daily budget of {policy.daily_tokens:,} tokens; it resets at 00:00 UTC "
            f"(in {left // 3600} h {left % 3600 // 60} min). Slash commands such as /sql still work.",
            limit="budget",
        )


class MemoryQuotas:
    """The same rules in one process (the terminal, or a single bot without Redis)."""

    MAX_BUCKETS = 10_000  # beyond this, buckets that have refilled completely are dropped

    def __init__(self, policy: QuotaPolicy, *, clock: Clock = time.time) -> None:
        self.policy = policy
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at ms)
        self._tokens: dict[tuple[str, dt.date], int] = {}

    async def admit(self, message: Message, *, uses_llm: bool) -> None:
        policy = self.policy
        if not policy.rate_limited and not (uses_llm and policy.daily_tokens):
            return
        now = self._clock()
        now_ms = now * 1000
        checks = [(f"user:{workspace_key(message)}:{message.user}", policy.user_per_minute, "user"),
                  (f"channel:{workspace_key(message)}:{message.channel}", policy.channel_per_minute, "channel")]
        levels: list[tuple[str, float]] = []
        for key, cap, name in checks:
            if cap <= 0:
                continue
            tokens, at = self._buckets.get(key, (float(cap), now_ms))
            level = min(cap, tokens + max(0.0, now_ms - at) * cap / WINDOW_MS)
            if level < 1:
                wait = math.ceil((1 - level) * WINDOW_MS / cap)
                _raise_for(_Verdict(name, wait, 0), policy, now=now, uses_llm=uses_llm)
            levels.append((key, level))
        for key, level in levels:
            self._buckets[key] = (level - 1, now_ms)
        if len(self._buckets) > self.MAX_BUCKETS:
            self._prune(now_ms)
        used = self._tokens.get((workspace_key(message), utc_day(now)), 0)
        _raise_for(_Verdict(None, 0, used), policy, now=now, uses_llm=uses_llm)

    async def spend(self, workspace: str, tokens: int) -> None:
        if not self.policy.daily_tokens or tokens <= 0:
            return
        day = utc_day(self._clock())
        self._tokens[(workspace, day)] = self._tokens.get((workspace, day), 0) + tokens
        for old in [k for k in self._tokens if k[1] < day - dt.timedelta(days=1)]:
            del self._tokens[old]

    def _prune(self, now_ms: float) -> None:
        for key, (_tokens, at) in list(self._buckets.items()):
            if now_ms - at >= WINDOW_MS:  # full again: forgetting it changes nothing
                del self._buckets[key]

    async def aclose(self) -> None:
        return None


# KEYS: the user's bucket, the channel's bucket, the workspace's token counter for today.
# ARGV: now (ms), user capacity, channel capacity, window (ms), "1" to read the token counter.
# A capacity of 0 means that limit is off. Returns {0 | 1 (user) | 2 (channel), wait ms, tokens used today}.
_ADMIT_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[4])
local caps = {tonumber(ARGV[2]), tonumber(ARGV[3])}
local levels = {}
for i = 1, 2 do
  local cap = caps[i]
  if cap > 0 then
    local v = redis.call('HMGET', KEYS[i], 'tokens', 'at')
    local tokens, at = tonumber(v[1]), tonumber(v[2])
    if tokens == nil or at == nil then tokens, at = cap, now end
    local level = math.min(cap, tokens + math.max(0, now - at) * cap / window)
    if level < 1 then
      return {i, math.ceil((1 - level) * window / cap), 0}
    end
    levels[i] = level
  end
end
for i = 1, 2 do
  if levels[i] ~= nil then
    redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i] - 1), 'at', tostring(now))
    redis.call('PEXPIRE', KEYS[i], window)
  end
end
local used = 0
if ARGV[5] == '1' then used = tonumber(redis.call('GET', KEYS[3]) or '0') end
return {0, 0, used}
"""


class RedisQuotas:
    """Buckets and token counters in Redis, shared by every replica (see the module docstring)."""

    def __init__(self, client: aioredis.Redis, policy: QuotaPolicy, *, clock: Clock = time.time,
                 prefix: str = "pgbot:quota:") -> None:
        self.policy = policy
        self._redis = client
        self._clock = clock
        self._prefix = prefix
        self._admit = client.register_script(_ADMIT_LUA)

    def _budget_key(self, workspace: str, day: dt.date) -> str:
        return f"{self._prefix}tokens:{workspace}:{day.isoformat()}"

    async def admit(self, message: Message, *, uses_llm: bool) -> None:
        policy = self.policy
        read_budget = uses_llm and policy.daily_tokens > 0
        if not policy.rate_limited and not read_budget:
            return
        now = self._clock()
        ws = workspace_key(message)
        keys = [f"{self._prefix}user:{ws}:{message.user}", f"{self._prefix}channel:{ws}:{message.channel}",
                self._budget_key(ws, utc_day(now))]
        args = [int(now * 1000), policy.user_per_minute, policy.channel_per_minute, WINDOW_MS,
                "1" if read_budget else "0"]
        try:
            status, wait_ms, used = await self._admit(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            log.warning("quota_check_unavailable", error=type(exc).__name__, action="message let through")
            return
        limited = {1: "user", 2: "channel"}.get(int(status))
        _raise_for(_Verdict(limited, int(wait_ms), int(used)), policy, now=now, uses_llm=uses_llm)

    async def spend(self, workspace: str, tokens: int) -> None:
        if not self.policy.daily_tokens or tokens <= 0:
            return
        key = self._budget_key(workspace, utc_day(self._clock()))
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incrby(key, tokens)
                pipe.expire(key, BUDGET_TTL_S)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("token_budget_unavailable", error=type(exc).__name__, tokens=tokens, workspace=workspace)

    async def aclose(self) -> None:
        await self._redis.aclose()

"""Per-thread turns across replicas: one message of a thread runs at a time, in arrival order, on any replica.

Two implementations of :class:`ThreadTurns`: :class:`LocalThreadTurns` (one process: the terminal, or a bot
without Redis) and :class:`RedisThreadTurns` (replicas sharing Redis and nothing else).

The Redis design, one hash per thread (``pgbot:turn:<thread_key>``), every decision in a Lua script that
reads Redis's own clock, so replica clocks never matter:

- **Arrival ticket.** A message takes ``n = HINCRBY seq 1`` when it arrives (in arrival order within a
  process, too: arrivals of one thread are chained). Its presence ``w:<n>`` holds an expiry that a heartbeat
  of the owning replica pushes forward.
- **Lease.** Ticket ``n`` may run when ``served == n - 1``; it then holds ``holder = n`` with ``until`` (the
  lease) that the heartbeat renews every ``lease/3``. Ending the turn sets ``served = n``. ``n`` doubles as
  the fencing token: a holder whose renewal finds another holder has lost the lease, and its turn is stopped.
- **Dead replicas.** A holder whose lease expired, and a waiting ticket whose presence expired, belong to a
  replica that died: the next waiter skips them (counted, so the thread can be told) and goes on. A ticket
  that leaves cleanly (cancelled, duplicate, shutdown) marks itself ``-1`` and is skipped silently.
- **Reset.** ``epoch`` is a random id set when the hash is created. If Redis loses the hash (restart without
  persistence, eviction), old tickets see another epoch: waiters take a new ticket, a holder loses its lease.

Round trips per uncontended turn: one script that takes the ticket and the lease together, one to release.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from core.errors import ContextUnavailableError
from core.threads.turns import ThreadLocks, Ticket

log = structlog.get_logger(__name__)

LostCallback = Callable[[], None]
Reading = int | bytes | str  # what the scripts return: integers, and the epoch as a bulk string


class TurnTicket(Protocol):
    """One message's place in its thread's line, from arrival to the end of its turn."""

    @property
    def abandoned(self) -> int:
        """Earlier messages of the thread whose replica died before answering them (reported once)."""
        ...

    async def arrive(self) -> None:
        """Make the place visible to every replica (before "working…" is shown)."""
        ...

    async def wait(self) -> None:
        """Return when it is this message's turn."""
        ...

    async def release(self) -> None:
        """End the turn or leave the line; idempotent, never raises."""
        ...


class ThreadTurns(Protocol):
    def enter(self, key: str, *, on_lost: LostCallback | None = None) -> TurnTicket:
        """Take a place in ``key``'s line now, without awaiting (arrival order); BusyError when it is full.

        ``on_lost`` is called if the turn's lease is lost while it runs (the turn must stop)."""
        ...

    async def aclose(self) -> None: ...


class _LocalTicket:
    __slots__ = ("_ticket",)

    def __init__(self, ticket: Ticket) -> None:
        self._ticket = ticket

    @property
    def abandoned(self) -> int:
        return 0

    async def arrive(self) -> None:
        return None

    async def wait(self) -> None:
        await self._ticket.__aenter__()

    async def release(self) -> None:
        self._ticket.release()


class LocalThreadTurns:
    """In-process lines (:class:`core.threads.turns.ThreadLocks`); leases cannot be lost in one process."""

    def __init__(self, *, max_waiting: int | None = None) -> None:
        self.locks = ThreadLocks(max_waiting=max_waiting)

    def enter(self, key: str, *, on_lost: LostCallback | None = None) -> TurnTicket:
        return _LocalTicket(self.locks.enter(key))

    async def aclose(self) -> None:
        return None


_LUA_COMMON = """
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local function advance(n)
  local served = tonumber(redis.call('HGET', key, 'served') or '0')
  if served >= n then return {-1, 0} end
  local lost = 0
  local holder = tonumber(redis.call('HGET', key, 'holder') or '0')
  if holder > 0 then
    if holder == n then
      redis.call('HSET', key, 'until', now + lease)
      return {1, 0}
    end
    if tonumber(redis.call('HGET', key, 'until') or '0') > now then
      redis.call('HSET', key, 'w:' .. n, now + lease)
      return {0, 0}
    end
    served = holder
    lost = 1
    redis.call('HDEL', key, 'holder', 'until')
  end
  while served < n - 1 do
    local field = 'w:' .. (served + 1)
    local alive = tonumber(redis.call('HGET', key, field) or '0')
    if alive > now then
      redis.call('HSET', key, 'served', served, 'w:' .. n, now + lease)
      return {0, lost}
    end
    if alive >= 0 then lost = lost + 1 end
    redis.call('HDEL', key, field)
    served = served + 1
  end
  redis.call('HSET', key, 'served', served, 'holder', n, 'until', now + lease)
  redis.call('HDEL', key, 'w:' .. n)
  redis.call('EXPIRE', key, ttl)
  return {1, lost}
end
"""

# ARGV: lease ms, key ttl s, new epoch. Returns {n, epoch, granted (1/0), lost}.
_ARRIVE_LUA = _LUA_COMMON + """
redis.call('HSETNX', key, 'epoch', ARGV[3])
local epoch = redis.call('HGET', key, 'epoch')
local n = redis.call('HINCRBY', key, 'seq', 1)
redis.call('HSET', key, 'w:' .. n, now + lease)
redis.call('EXPIRE', key, ttl)
local r = advance(n)
return {n, epoch, r[1], r[2]}
"""

# ARGV: lease ms, key ttl s, n, epoch. Returns {1 granted | 0 wait | -1 skipped | -2 reset, lost}.
_TRY_LUA = _LUA_COMMON + """
if redis.call('HGET', key, 'epoch') ~= ARGV[4] then return {-2, 0} end
return advance(tonumber(ARGV[3]))
"""

# ARGV: lease ms, key ttl s, n, epoch. Renews a holder's lease or a waiter's presence; 1 ok, 0 lost.
_BEAT_LUA = _LUA_COMMON + """
if redis.call('HGET', key, 'epoch') ~= ARGV[4] then return 0 end
local n = tonumber(ARGV[3])
if tonumber(redis.call('HGET', key, 'holder') or '0') == n then
  redis.call('HSET', key, 'until', now + lease)
  return 1
end
local alive = tonumber(redis.call('HGET', key, 'w:' .. n) or '-1')
if alive < 0 or tonumber(redis.call('HGET', key, 'served') or '0') >= n then return 0 end
redis.call('HSET', key, 'w:' .. n, now + lease)
return 1
"""

# ARGV: lease ms, key ttl s, n, epoch. Ends ticket n's turn, or marks it as having left the line.
_RELEASE_LUA = _LUA_COMMON + """
if redis.call('HGET', key, 'epoch') ~= ARGV[4] then return 0 end
local n = tonumber(ARGV[3])
if tonumber(redis.call('HGET', key, 'holder') or '0') == n then
  redis.call('HSET', key, 'served', n)
  redis.call('HDEL', key, 'holder', 'until')
  return 1
end
if tonumber(redis.call('HGET', key, 'served') or '0') < n then
  redis.call('HSET', key, 'w:' .. n, -1)
end
return 1
"""

POLL_MIN_S = 0.01
POLL_MAX_S = 0.1
RELEASE_RETRY_S = 0.2
RELEASE_RETRY_FOR_S = 60.0


class _RedisTicket:
    """A ticket in Redis plus this process's place in the local line (which keeps local arrival order)."""

    def __init__(self, owner: RedisThreadTurns, key: str, local: Ticket, on_lost: LostCallback | None) -> None:
        self._owner = owner
        self.key = key
        self._local = local
        self._on_lost = on_lost
        self.n = 0
        self.epoch = ""
        self.granted = False
        self.holding = False
        self.released = False
        self._abandoned = 0
        self._valid_until = 0.0  # monotonic: the lease is surely ours until then
        self._arrival = owner._schedule_arrival(self)

    @property
    def abandoned(self) -> int:
        return self._abandoned

    async def arrive(self) -> None:
        # Shielded: cancelling a waiter must not cancel its arrival script in flight (see release()).
        await asyncio.shield(self._arrival)

    async def _register(self) -> None:
        answer = await self._owner._call(self._owner._arrive, self.key, secrets.token_hex(8))
        self.n, self.epoch = int(answer[0]), _text(answer[1])
        self.granted = int(answer[2]) == 1
        self._abandoned += int(answer[3])
        self._valid_until = time.monotonic() + self._owner.lease_s

    async def wait(self) -> None:
        await asyncio.shield(self._arrival)
        await self._local.__aenter__()  # earlier messages of this process go first (they hold lower tickets)
        delay = POLL_MIN_S
        while not self.granted:
            code, lost = await self._owner._call(self._owner._try, self.key, self.n, self.epoch)
            self._abandoned += int(lost)
            if int(code) == 1:
                self.granted = True
                self._valid_until = time.monotonic() + self._owner.lease_s
            elif int(code) < 0:  # skipped as dead (a stalled process) or Redis lost the line: queue again
                log.warning("thread_ticket_requeued", thread=self.key, ticket=self.n, reason=int(code))
                await self._register()
                delay = POLL_MIN_S
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, POLL_MAX_S)
        self.holding = True

    def beat_failed(self) -> None:
        """Renewal impossible: a holder past its lease has lost it (another replica may take the thread)."""
        if self.holding and not self.released and time.monotonic() > self._valid_until:
            self.lost()

    def beat_ok(self) -> None:
        self._valid_until = time.monotonic() + self._owner.lease_s

    def lost(self) -> None:
        if not self.holding or self.released:
            return  # a waiter that lost its place queues again in wait()
        self.holding = False
        log.warning("thread_lease_lost", thread=self.key, ticket=self.n)
        if self._on_lost is not None:
            self._on_lost()

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        self._owner._tickets.discard(self)
        try:
            if not self._arrival.done():
                # Never cancel an arrival in flight: its script may already have numbered the ticket in Redis,
                # and an unreleased number stalls the thread for a lease and reads as a dead replica. The
                # release follows the arrival in the background instead (a duplicate event costs no wait).
                self._owner._release_after_arrival(self)
                return
            await self._release_numbered()
        finally:
            self._local.release()

    async def _release_numbered(self) -> None:
        try:
            self._arrival.result()
        except (asyncio.CancelledError, ContextUnavailableError):
            return  # never numbered: nothing in Redis to release
        try:
            await self._owner._call(self._owner._release, self.key, self.n, self.epoch)
        except ContextUnavailableError:
            # Redis is away: retry in the background (the thread's next arrival here waits for it), so a
            # waiter does not mistake this turn for a dead replica's; at worst the lease just expires.
            log.warning("thread_release_failed", thread=self.key, ticket=self.n)
            self._owner._retry_release(self)


def _text(value: Reading) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisThreadTurns:
    """Cross-replica lines in Redis; see the module docstring for the protocol."""

    def __init__(
        self, client: aioredis.Redis, *, lease_s: float = 15.0, key_ttl_s: int = 24 * 3600,
        max_waiting: int | None = None, prefix: str = "pgbot:turn",
    ) -> None:
        self._redis = client
        self.lease_s = lease_s
        self._lease_ms = int(lease_s * 1000)
        self._key_ttl_s = key_ttl_s
        self._prefix = prefix
        self._local = ThreadLocks(max_waiting=max_waiting)
        self._arrive = client.register_script(_ARRIVE_LUA)
        self._try = client.register_script(_TRY_LUA)
        self._beat = client.register_script(_BEAT_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self._tickets: set[_RedisTicket] = set()
        self._last_arrival: dict[str, asyncio.Task[None]] = {}
        self._unreleased: dict[str, _RedisTicket] = {}  # turns that ended while Redis was away, by thread
        self._releasing: set[asyncio.Task[None]] = set()
        self._following: set[asyncio.Task[None]] = set()  # releases waiting for their arrival's script
        self._heart: asyncio.Task[None] | None = None

    def key(self, thread_key: str) -> str:
        return f"{self._prefix}:{thread_key}"

    def enter(self, key: str, *, on_lost: LostCallback | None = None) -> TurnTicket:
        local = self._local.enter(key)  # BusyError when this process already has a full line for the thread
        ticket = _RedisTicket(self, key, local, on_lost)
        self._tickets.add(ticket)
        if self._heart is None or self._heart.done():
            self._heart = asyncio.get_running_loop().create_task(self._heartbeat(), name="pgbot-turn-heartbeat")
        return ticket

    def _schedule_arrival(self, ticket: _RedisTicket) -> asyncio.Task[None]:
        previous = self._last_arrival.get(ticket.key)

        async def arrive() -> None:
            if previous is not None:  # arrivals of one thread reach Redis in the order they reached us
                await asyncio.wait([previous])
            unreleased = self._unreleased.get(ticket.key)
            if unreleased is not None:  # our last turn here ended while Redis was away: release it first
                await self._call(self._release, unreleased.key, unreleased.n, unreleased.epoch)
                self._forget_release(unreleased)
            await ticket._register()

        task = asyncio.get_running_loop().create_task(arrive())
        self._last_arrival[ticket.key] = task
        task.add_done_callback(lambda done: self._arrived(ticket.key, done))
        return task

    def _release_after_arrival(self, ticket: _RedisTicket) -> None:
        async def release() -> None:
            await asyncio.wait([ticket._arrival])
            await ticket._release_numbered()

        task = asyncio.get_running_loop().create_task(release())
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    def _retry_release(self, ticket: _RedisTicket) -> None:
        """Release once Redis answers again (safe after the lease expired: the script checks the holder)."""
        async def retry() -> None:
            deadline = time.monotonic() + max(RELEASE_RETRY_FOR_S, 4 * self.lease_s)
            while time.monotonic() < deadline and self._unreleased.get(ticket.key) is ticket:
                await asyncio.sleep(RELEASE_RETRY_S)
                try:
                    await self._call(self._release, ticket.key, ticket.n, ticket.epoch)
                except ContextUnavailableError:
                    continue
                log.info("thread_released_late", thread=ticket.key, ticket=ticket.n)
                break
            self._forget_release(ticket)

        self._unreleased[ticket.key] = ticket
        task = asyncio.get_running_loop().create_task(retry())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    def _forget_release(self, ticket: _RedisTicket) -> None:
        if self._unreleased.get(ticket.key) is ticket:
            del self._unreleased[ticket.key]

    def _arrived(self, key: str, task: asyncio.Task[None]) -> None:
        if self._last_arrival.get(key) is task:
            del self._last_arrival[key]
        if not task.cancelled() and task.exception() is not None:
            log.debug("thread_arrival_failed", thread=key)  # reported to the user by arrive()/wait()

    async def _call(self, script: AsyncScript, key: str, *args: int | str) -> list[Reading]:
        try:
            answer = await script(keys=[self.key(key)], args=[self._lease_ms, self._key_ttl_s, *args])
        except (RedisError, OSError) as exc:
            raise ContextUnavailableError() from exc
        return list(answer) if isinstance(answer, list) else [answer]

    async def _heartbeat(self) -> None:
        """Renew every live ticket of this process in one round trip, every lease/3."""
        while self._tickets:
            await asyncio.sleep(self.lease_s / 3)
            live = [t for t in self._tickets if t._arrival.done() and t.n and not t.released]
            if not live:
                continue
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for ticket in live:
                        await self._beat(keys=[self.key(ticket.key)],
                                         args=[self._lease_ms, self._key_ttl_s, ticket.n, ticket.epoch], client=pipe)
                    results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as exc:
                log.warning("thread_heartbeat_failed", error=type(exc).__name__, tickets=len(live))
                for ticket in live:
                    ticket.beat_failed()
                continue
            for ticket, result in zip(live, results, strict=True):
                if isinstance(result, Exception):
                    ticket.beat_failed()
                elif int(result) == 1:
                    ticket.beat_ok()
                else:
                    ticket.lost()

    async def aclose(self) -> None:
        for ticket in list(self._tickets):
            await ticket.release()
        if self._following:  # one round trip each: let them finish so no number is left to expire
            await asyncio.wait(self._following, timeout=self.lease_s)
        for task in [self._heart, *self._releasing, *self._following]:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._redis.aclose()

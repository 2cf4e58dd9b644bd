"""Admission control for turns: per-user, per-database and global concurrency limits with a bounded queue.

Why three limits: one person pasting twenty questions must not take every slot (per user, per database);
one slow database must not stall conversations on the others (per database); the process as a whole must
not take more work than its CPU, pools and model quota can serve (global). A turn over a limit waits in
FIFO order; when ``max_queued`` turns already wait, or a turn has waited ``timeout_s``, it is answered with
a :class:`BusyError` naming the limit, never dropped. Slots are taken in one fixed order (user, database,
global), so two turns can never hold what the other waits for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import BusyError

if TYPE_CHECKING:
    from core.config import Settings


DEFAULT_LIMIT = 32  # a database the config does not list (cannot happen via the agent; a safe default)


class _Keyed:
    """Semaphores by key, created on demand and dropped when idle (users come and go)."""

    def __init__(self, limit_of: Callable[[str], int]) -> None:
        self.limit = limit_of
        self._sems: dict[str, tuple[asyncio.Semaphore, int]] = {}

    def would_wait(self, key: str) -> bool:
        entry = self._sems.get(key)
        return entry is not None and entry[0].locked()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        sem, users = self._sems.get(key) or (asyncio.Semaphore(self.limit(key)), 0)
        self._sems[key] = (sem, users + 1)
        try:
            async with sem:
                yield
        finally:
            sem, users = self._sems[key]
            if users <= 1:
                del self._sems[key]
            else:
                self._sems[key] = (sem, users - 1)

    def __len__(self) -> int:
        return len(self._sems)


@dataclass(frozen=True, slots=True)
class LimiterStats:
    running: int
    waiting: int
    rejected: int


class TurnLimiter:
    """``async with limiter.slot(user=..., database=...)`` runs a turn within every configured limit."""

    def __init__(
        self,
        *,
        global_limit: int,
        per_user: dict[str, int] | int,
        per_database: dict[str, int] | int,
        max_queued: int,
        timeout_s: float,
    ) -> None:
        self._global = asyncio.Semaphore(global_limit)
        self.global_limit = global_limit
        self._users = _Keyed(lambda key: _lookup(per_user, key.split("\x00", 1)[0]))
        self._databases = _Keyed(lambda key: _lookup(per_database, key))
        self.max_queued = max_queued
        self.timeout_s = timeout_s
        self._running = 0
        self._waiting = 0
        self._rejected = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> TurnLimiter:
        dbs = settings.databases
        return cls(
            global_limit=settings.limits.max_concurrent_turns,
            per_user={name: db.max_concurrent_per_user for name, db in dbs.items()},
            per_database={name: db.max_concurrent_turns for name, db in dbs.items()},
            max_queued=settings.limits.max_queued_turns,
            timeout_s=settings.limits.queue_timeout_s,
        )

    @property
    def stats(self) -> LimiterStats:
        return LimiterStats(running=self._running, waiting=self._waiting, rejected=self._rejected)

    def _would_wait(self, user_key: str, database: str) -> bool:
        return self._users.would_wait(user_key) or self._databases.would_wait(database) or self._global.locked()

    @asynccontextmanager
    async def slot(self, *, user: str, database: str) -> AsyncIterator[None]:
        user_key = f"{database}\x00{user}"
        if self._would_wait(user_key, database) and self._waiting >= self.max_queued:
            self._rejected += 1
            raise BusyError(
                f"pgbot is at capacity ({self._running} requests running, {self._waiting} waiting); this message "
                "was not run. Please send it again in a minute."
            )
        async with AsyncExitStack() as stack:
            self._waiting += 1
            step = "user"
            try:
                async with asyncio.timeout(self.timeout_s):
                    await stack.enter_async_context(self._users.hold(user_key))
                    step = "database"
                    await stack.enter_async_context(self._databases.hold(database))
                    step = "global"
                    await stack.enter_async_context(_held(self._global))
            except TimeoutError:
                self._rejected += 1
                raise BusyError(self._timeout_message(step, user=user, database=database)) from None
            finally:
                self._waiting -= 1
            self._running += 1
            try:
                yield
            finally:
                self._running -= 1

    def _timeout_message(self, step: str, *, user: str, database: str) -> str:
        waited = f"after waiting {self.timeout_s:g} s this message was not run; please send it again"
        if step == "user":
            limit = self._users.limit(f"{database}\x00{user}")
            return (f"You already have {limit} request{'s' if limit != 1 else ''} running on '{database}'; {waited} "
                    "when they finish.")
        if step == "database":
            limit = self._databases.limit(database)
            return f"Database '{database}' is busy with {limit} requests; {waited} in a moment."
        return f"pgbot is busy with {self.global_limit} requests; {waited} in a moment."


@asynccontextmanager
async def _held(sem: asyncio.Semaphore) -> AsyncIterator[None]:
    async with sem:
        yield


def _lookup(limits: dict[str, int] | int, database: str) -> int:
    return limits if isinstance(limits, int) else limits.get(database, DEFAULT_LIMIT)

"""Per-thread conversation state: history sent back to the model and the thread's chosen database.

Two implementations pass the same test suite: :class:`RedisContextStore` (shared by every bot replica, TTL
on every key) and :class:`MemoryContextStore` (the terminal, when no Redis URL is configured).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.errors import PgbotError
from core.llm.base import ChatTurn


class ContextUnavailableError(PgbotError):
    default_message = "pgbot's context store (Redis) cannot be reached; try again in a moment."


class ContextStore(Protocol):
    async def history(self, thread_key: str) -> list[ChatTurn]: ...

    async def load(self, thread_key: str) -> tuple[str | None, list[ChatTurn]]:
        """The thread's database and history together: what every turn starts with, in one round trip."""
        ...

    async def append(self, thread_key: str, turns: Sequence[ChatTurn]) -> None: ...

    async def get_database(self, thread_key: str) -> str | None: ...

    async def set_database(self, thread_key: str, name: str) -> None: ...

    async def aclose(self) -> None: ...


def trim_history(turns: list[ChatTurn], max_turns: int) -> list[ChatTurn]:
    """Keep the newest turns, starting at a user turn so no tool result loses its tool call."""
    if len(turns) > max_turns:
        turns = turns[-max_turns:]
    for index, turn in enumerate(turns):
        if turn.role == "user":
            return turns[index:]
    return []


class MemoryContextStore:
    """In-process store for the terminal; entries expire like the Redis ones."""

    def __init__(self, *, ttl_s: int = 7 * 24 * 3600, max_turns: int = 40) -> None:
        self._ttl_s = ttl_s
        self._max_turns = max_turns
        self._history: dict[str, tuple[float, list[ChatTurn]]] = {}
        self._database: dict[str, tuple[float, str]] = {}

    def _alive(self, stamp: float) -> bool:
        return time.monotonic() - stamp < self._ttl_s

    async def history(self, thread_key: str) -> list[ChatTurn]:
        entry = self._history.get(thread_key)
        if entry is None or not self._alive(entry[0]):
            return []
        return trim_history(list(entry[1]), self._max_turns)

    async def append(self, thread_key: str, turns: Sequence[ChatTurn]) -> None:
        current = await self.history(thread_key)
        self._history[thread_key] = (time.monotonic(), trim_history(current + list(turns), self._max_turns * 2))

    async def get_database(self, thread_key: str) -> str | None:
        entry = self._database.get(thread_key)
        return entry[1] if entry and self._alive(entry[0]) else None

    async def load(self, thread_key: str) -> tuple[str | None, list[ChatTurn]]:
        return await self.get_database(thread_key), await self.history(thread_key)

    async def set_database(self, thread_key: str, name: str) -> None:
        self._database[thread_key] = (time.monotonic(), name)

    async def aclose(self) -> None:
        self._history.clear()
        self._database.clear()


class RedisContextStore:
    """Redis-backed store: one list of JSON turns and one string per thread, both with a TTL."""

    def __init__(self, client: aioredis.Redis, *, ttl_s: int, max_turns: int, prefix: str = "pgbot:ctx") -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._max_turns = max_turns
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, ttl_s: int, max_turns: int) -> RedisContextStore:
        return cls(aioredis.Redis.from_url(url, decode_responses=True), ttl_s=ttl_s, max_turns=max_turns)

    def _key(self, thread_key: str, part: str) -> str:
        return f"{self._prefix}:{thread_key}:{part}"

    async def history(self, thread_key: str) -> list[ChatTurn]:
        try:
            raw = await self._redis.lrange(self._key(thread_key, "history"), -self._max_turns, -1)
        except RedisError as exc:
            raise ContextUnavailableError() from exc
        return trim_history([ChatTurn.model_validate_json(item) for item in raw], self._max_turns)

    async def load(self, thread_key: str) -> tuple[str | None, list[ChatTurn]]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._key(thread_key, "db"))
                pipe.lrange(self._key(thread_key, "history"), -self._max_turns, -1)
                name, raw = await pipe.execute()
        except RedisError as exc:
            raise ContextUnavailableError() from exc
        history = trim_history([ChatTurn.model_validate_json(item) for item in raw], self._max_turns)
        return (str(name) if name is not None else None), history

    async def append(self, thread_key: str, turns: Sequence[ChatTurn]) -> None:
        if not turns:
            return
        key = self._key(thread_key, "history")
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, *(t.model_dump_json(exclude_defaults=True) for t in turns))
                pipe.ltrim(key, -self._max_turns * 2, -1)
                pipe.expire(key, self._ttl_s)
                await pipe.execute()
        except RedisError as exc:
            raise ContextUnavailableError() from exc

    async def get_database(self, thread_key: str) -> str | None:
        try:
            value = await self._redis.get(self._key(thread_key, "db"))
        except RedisError as exc:
            raise ContextUnavailableError() from exc
        return str(value) if value is not None else None

    async def set_database(self, thread_key: str, name: str) -> None:
        try:
            await self._redis.set(self._key(thread_key, "db"), name, ex=self._ttl_s)
        except RedisError as exc:
            raise ContextUnavailableError() from exc

    async def aclose(self) -> None:
        await self._redis.aclose()

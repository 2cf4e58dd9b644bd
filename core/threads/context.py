"""Per-thread conversation state: history sent back to the model and the thread's chosen database.

History is read for someone: ``history(thread, viewer=scope)`` returns the turns as that database and role
may see them (:mod:`core.threads.history_scope`): another role's results never come back out of the store.
Two implementations pass the same test suite: :class:`RedisContextStore` (shared by every bot replica, TTL
on every key) and :class:`MemoryContextStore` (the terminal, when no Redis URL is configured).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.errors import ContextUnavailableError
from core.llm.base import ChatTurn, ReadScope
from core.sql_secrets import mask_sql, mask_text
from core.threads.history_scope import StoredHistory, visible_history


class ContextStore(Protocol):
    async def history(self, thread_key: str, *, viewer: ReadScope) -> list[ChatTurn]:
        """The thread's recent turns as ``viewer`` may send them to the model."""
        ...

    async def has_history(self, thread_key: str) -> bool:
        """Whether anything was said in the thread (no content: safe for any caller)."""
        ...

    async def load(self, thread_key: str) -> tuple[str | None, StoredHistory]:
        """The thread's database and history together: what every turn starts with, in one round trip; the
        history yields turns only through ``visible_to(viewer)``, once the turn's role is known."""
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


def masked_turns(turns: Sequence[ChatTurn]) -> list[ChatTurn]:
    """Turns as history keeps them: passwords in SQL and connection strings masked (core.sql_secrets), in
    text and in tool-call arguments alike, so a later turn never sends them to the model again."""
    return [_masked(turn) for turn in turns]


def _masked(turn: ChatTurn) -> ChatTurn:
    content = mask_text(turn.content) if turn.content else turn.content
    calls = tuple(call.model_copy(update={"arguments": _masked_arguments(call.arguments)})
                  for call in turn.tool_calls)
    if content == turn.content and calls == turn.tool_calls:
        return turn
    return turn.model_copy(update={"content": content, "tool_calls": calls})


def _masked_arguments(arguments: str) -> str:
    try:
        parsed = json.loads(arguments)
        masked = _mask_values(parsed)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses (model output)
        return mask_text(arguments)
    return arguments if masked == parsed else json.dumps(masked, ensure_ascii=False)


def _mask_values(value: object) -> object:
    if isinstance(value, str):
        return mask_sql(value)
    if isinstance(value, dict):
        return {key: _mask_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_values(item) for item in value]
    return value


class MemoryContextStore:
    """In-process store for the terminal; entries expire like the Redis ones."""

    def __init__(self, *, ttl_s: int = 7 * 24 * 3600, max_turns: int = 40) -> None:
        self._ttl_s = ttl_s
        self._max_turns = max_turns
        self._history: dict[str, tuple[float, list[ChatTurn]]] = {}
        self._database: dict[str, tuple[float, str]] = {}

    def _alive(self, stamp: float) -> bool:
        return time.monotonic() - stamp < self._ttl_s

    def _stored(self, thread_key: str) -> list[ChatTurn]:
        entry = self._history.get(thread_key)
        if entry is None or not self._alive(entry[0]):
            return []
        return trim_history(list(entry[1]), self._max_turns)

    async def history(self, thread_key: str, *, viewer: ReadScope) -> list[ChatTurn]:
        return visible_history(self._stored(thread_key), viewer)

    async def has_history(self, thread_key: str) -> bool:
        return bool(self._stored(thread_key))

    async def append(self, thread_key: str, turns: Sequence[ChatTurn]) -> None:
        current = self._stored(thread_key)
        self._history[thread_key] = (time.monotonic(),
                                     trim_history(current + masked_turns(turns), self._max_turns * 2))

    async def get_database(self, thread_key: str) -> str | None:
        entry = self._database.get(thread_key)
        return entry[1] if entry and self._alive(entry[0]) else None

    async def load(self, thread_key: str) -> tuple[str | None, StoredHistory]:
        return await self.get_database(thread_key), StoredHistory(self._stored(thread_key))

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

    def _key(self, thread_key: str, part: str) -> str:
        return f"{self._prefix}:{thread_key}:{part}"

    async def history(self, thread_key: str, *, viewer: ReadScope) -> list[ChatTurn]:
        try:
            raw = await self._redis.lrange(self._key(thread_key, "history"), -self._max_turns, -1)
        except RedisError as exc:
            raise ContextUnavailableError() from exc
        turns = trim_history([ChatTurn.model_validate_json(item) for item in raw], self._max_turns)
        return visible_history(turns, viewer)

    async def has_history(self, thread_key: str) -> bool:
        try:
            return bool(await self._redis.exists(self._key(thread_key, "history")))
        except RedisError as exc:
            raise ContextUnavailableError() from exc

    async def load(self, thread_key: str) -> tuple[str | None, StoredHistory]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._key(thread_key, "db"))
                pipe.lrange(self._key(thread_key, "history"), -self._max_turns, -1)
                name, raw = await pipe.execute()
        except RedisError as exc:
            raise ContextUnavailableError() from exc
        history = trim_history([ChatTurn.model_validate_json(item) for item in raw], self._max_turns)
        return (str(name) if name is not None else None), StoredHistory(history)

    async def append(self, thread_key: str, turns: Sequence[ChatTurn]) -> None:
        if not turns:
            return
        key = self._key(thread_key, "history")
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, *(t.model_dump_json(exclude_defaults=True) for t in masked_turns(turns)))
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

"""👍/👎 on answers: what was asked and run is remembered per answer, votes go to ``pgbot.feedback``.

* :class:`AnswerLog` remembers, for every ANSWER reply, its question, SQL, database and thread, keyed by
  ``Reply.answer_id``, for as long as the thread's context lives (Redis TTL, or in memory for the terminal).
  A vote arrives later, from a button click or ``/good``/``/bad``, with nothing but the answer id.
* :class:`FeedbackStore` writes votes into ``pgbot.feedback`` in the answered database itself, created on
  first use by the bot's login role (never the user's role: people need no privileges on pgbot's schema),
  and reads back the pairs the team marked right, which :mod:`core.prompt.examples` ranks for the prompt.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.db.base import Connection, Database
from core.db.owned import ensure_owned_table
from core.errors import DatabaseError, FeedbackUnavailableError

CREATE_SQL = """
CREATE SCHEMA IF NOT EXISTS pgbot;
CREATE TABLE IF NOT EXISTS pgbot.feedback (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    answer_id   text        NOT NULL,
    database    text        NOT NULL,
    question    text        NOT NULL,
    sql         text        NOT NULL,
    helpful     boolean     NOT NULL,
    voted_by    text        NOT NULL,
    asked_by    text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (answer_id, voted_by)
);
COMMENT ON TABLE pgbot.feedback IS 'pgbot: 👍/👎 votes on answers; 👍 pairs become prompt examples.';
"""

UPSERT_SQL = """
INSERT INTO pgbot.feedback (answer_id, database, question, sql, helpful, voted_by, asked_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (answer_id, voted_by) DO UPDATE SET helpful = excluded.helpful, created_at = now()
"""

# A pair counts as right when its 👍 outnumber its 👎; the newest first, bounded.
POSITIVE_SQL = """
SELECT question, sql, count(*) FILTER (WHERE helpful) AS up, max(created_at) AS last
FROM pgbot.feedback
WHERE database = $1 AND sql <> ''
GROUP BY question, sql
HAVING count(*) FILTER (WHERE helpful) > count(*) FILTER (WHERE NOT helpful)
ORDER BY last DESC
LIMIT $2
"""

SQL_SEPARATOR = ";\n"
MEMORY_MAX_ANSWERS = 10_000


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """What an answer was: enough to store a vote on it and reuse it as an example."""

    answer_id: str
    database: str
    question: str
    sql: tuple[str, ...]
    thread_key: str
    asked_by: str
    table_sql: str = ""  # the statement behind the answer's table: what "Export all rows" runs again

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> AnswerRecord:
        data = json.loads(raw)
        data["sql"] = tuple(data.get("sql") or ())
        known = {f.name for f in fields(cls)}  # a record written by another pgbot version still loads
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class Example:
    question: str
    sql: str
    votes: int


class AnswerLog(Protocol):
    async def remember(self, record: AnswerRecord) -> None: ...

    async def recall(self, answer_id: str) -> AnswerRecord | None: ...

    async def last_in_thread(self, thread_key: str) -> AnswerRecord | None: ...

    async def aclose(self) -> None: ...


class MemoryAnswerLog:
    """In-process answer log (terminal, tests); bounded and expiring like the Redis one."""

    def __init__(self, *, ttl_s: float = 7 * 24 * 3600, max_answers: int = MEMORY_MAX_ANSWERS) -> None:
        self._ttl_s = ttl_s
        self._max = max_answers
        self._answers: OrderedDict[str, tuple[float, AnswerRecord]] = OrderedDict()
        self._last: dict[str, str] = {}

    async def remember(self, record: AnswerRecord) -> None:
        self._answers[record.answer_id] = (time.monotonic(), record)
        self._last[record.thread_key] = record.answer_id
        while len(self._answers) > self._max:
            _, (_, dropped) = self._answers.popitem(last=False)
            if self._last.get(dropped.thread_key) == dropped.answer_id:
                del self._last[dropped.thread_key]

    async def recall(self, answer_id: str) -> AnswerRecord | None:
        entry = self._answers.get(answer_id)
        if entry is None or time.monotonic() - entry[0] >= self._ttl_s:
            return None
        return entry[1]

    async def last_in_thread(self, thread_key: str) -> AnswerRecord | None:
        answer_id = self._last.get(thread_key)
        return await self.recall(answer_id) if answer_id else None

    async def aclose(self) -> None:
        self._answers.clear()
        self._last.clear()


class RedisAnswerLog:
    """Answer records in Redis with the thread context's TTL, shared by every bot replica."""

    def __init__(self, client: aioredis.Redis, *, ttl_s: int, prefix: str = "pgbot:answer") -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def remember(self, record: AnswerRecord) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(f"{self._prefix}:{record.answer_id}", record.to_json(), ex=self._ttl_s)
                pipe.set(f"{self._prefix}:last:{record.thread_key}", record.answer_id, ex=self._ttl_s)
                await pipe.execute()
        except RedisError as exc:
            raise FeedbackUnavailableError("pgbot's context store (Redis) cannot be reached.") from exc

    async def recall(self, answer_id: str) -> AnswerRecord | None:
        try:
            raw = await self._redis.get(f"{self._prefix}:{answer_id}")
        except RedisError as exc:
            raise FeedbackUnavailableError() from exc
        return AnswerRecord.from_json(raw) if raw else None

    async def last_in_thread(self, thread_key: str) -> AnswerRecord | None:
        try:
            answer_id = await self._redis.get(f"{self._prefix}:last:{thread_key}")
        except RedisError as exc:
            raise FeedbackUnavailableError() from exc
        return await self.recall(str(answer_id)) if answer_id else None

    async def aclose(self) -> None:
        await self._redis.aclose()


class FeedbackStore:
    """``pgbot.feedback`` in each target database: votes in, 👍 question/SQL pairs out (cached briefly)."""

    def __init__(self, *, cache_s: float = 60.0, max_candidates: int = 500) -> None:
        self._ready: set[str] = set()
        self._cache_s = cache_s
        self._max_candidates = max_candidates
        self._cache: dict[str, tuple[float, list[Example]]] = {}

    async def ensure(self, db: Database) -> None:
        """Create schema and table once per process, as the login role; a lock serialises racing replicas."""
        if db.name in self._ready:
            return
        try:
            await ensure_owned_table(db, "pgbot.feedback", CREATE_SQL)
        except DatabaseError as exc:
            raise FeedbackUnavailableError(
                f"pgbot could not create its feedback table in '{db.name}' ({exc.user_message}). "
                "The bot's login role needs CREATE on the database, or an admin can create schema pgbot for it."
            ) from exc
        self._ready.add(db.name)

    async def record(self, db: Database, *, answer: AnswerRecord, voted_by: str, helpful: bool) -> None:
        await self.ensure(db)
        args = (answer.answer_id, answer.database, answer.question, SQL_SEPARATOR.join(answer.sql), helpful,
                voted_by, answer.asked_by)

        async def work(conn: Connection) -> None:
            await conn.execute(UPSERT_SQL, *args)

        try:
            await db.run(work, role=None, read_only=False)
        except DatabaseError as exc:
            raise FeedbackUnavailableError(f"pgbot could not store your feedback: {exc.user_message}") from exc
        self._cache.pop(db.name, None)

    async def positive(self, db: Database) -> list[Example]:
        """Question/SQL pairs of ``db`` with more 👍 than 👎, newest first; [] before any feedback exists."""
        cached = self._cache.get(db.name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]

        async def work(conn: Connection) -> list[Example]:
            if await conn.fetchval("SELECT to_regclass('pgbot.feedback')") is None:
                return []
            rows = await conn.fetch(POSITIVE_SQL, db.name, self._max_candidates)
            return [Example(r["question"], r["sql"], int(r["up"])) for r in rows]

        examples = await db.run(work, role=None, read_only=True)
        self._cache[db.name] = (now, examples)
        return examples

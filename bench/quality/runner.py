"""Run the questions through pgbot's agent and the single-prompt baseline; score execution accuracy.

Both systems use the same ``[llm]`` settings. pgbot runs as in production (``bot.wiring.build_agent``, the
``[accuracy]`` techniques as configured) with a fresh thread per question; if it asks a clarifying
question, the benchmark answers once with "use the most common interpretation" (a user saying "your call")
and scores the answer after that. The statement each system ends with is run again on a read-only
connection and compared with the reference query's result (:mod:`bench.quality.compare`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg

from bench.quality.baseline import baseline_messages, extract_sql, whole_schema
from bench.quality.compare import ResultSet, matches, normalize_rows
from bench.quality.questions import Question
from bot.demo import load_demo
from bot.wiring import build_agent
from core.agent.loop import Agent
from core.config import DatabaseSettings, Settings
from core.errors import GuardError, PgbotError
from core.llm.base import ChatTurn, Completion, LlmClient, ToolSpec
from core.messages import Message, Reply, ReplyKind
from core.sqlguard import SqlGuard
from tests.services import throwaway_database

SYSTEMS = ("pgbot", "baseline")
CLARIFICATION_REPLY = "Use the most common interpretation and state your assumption."
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
MAX_COMPARE_ROWS = 20_000
COMPARE_TIMEOUT_MS = 30_000


class CountingLlm:
    """An ``LlmClient`` that counts calls and tokens of the client it wraps (per question: reset it)."""

    def __init__(self, inner: LlmClient) -> None:
        self.inner = inner
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    async def complete(self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> Completion:
        completion = await self.inner.complete(messages, tools)
        self.calls += 1
        self.prompt_tokens += completion.usage.prompt_tokens
        self.completion_tokens += completion.usage.completion_tokens
        return completion

    def reset(self) -> None:
        self.calls = self.prompt_tokens = self.completion_tokens = 0

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(slots=True)
class Outcome:
    system: str
    question_id: str
    status: str  # ok | wrong | no-sql | refused | sql-error | error
    sql: str | None = None
    detail: str = ""
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    clarified: bool = False

    @property
    def correct(self) -> bool:
        return self.status == "ok"

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Report:
    questions: list[Question]
    systems: tuple[str, ...]
    endpoint: str
    model: str
    database: str
    timezone: str
    disabled: tuple[str, ...] = ()
    smoke: bool = False
    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)

    def score(self, system: str) -> tuple[int, int]:
        rows = [self.outcomes[(system, q.id)] for q in self.questions if (system, q.id) in self.outcomes]
        return sum(o.correct for o in rows), len(rows)

    def to_json(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint, "model": self.model, "database": self.database, "timezone": self.timezone,
            "smoke": self.smoke, "disabled": list(self.disabled),
            "scores": {s: dict(zip(("correct", "total"), self.score(s), strict=True)) for s in self.systems},
            "outcomes": [
                {"system": o.system, "id": o.question_id, "status": o.status, "correct": o.correct, "sql": o.sql,
                 "detail": o.detail, "seconds": round(o.seconds, 3), "prompt_tokens": o.prompt_tokens,
                 "completion_tokens": o.completion_tokens, "calls": o.calls, "clarified": o.clarified}
                for o in self.outcomes.values()
            ],
        }


# -- the database ---------------------------------------------------------------------------------


@asynccontextmanager
async def demo_database(*, dsn: str | None, admin_dsn: str, keep: bool = False) -> AsyncIterator[str]:
    """The demo shop, freshly loaded: in ``dsn`` if given, else in a throwaway database dropped afterwards."""
    if dsn is not None:
        conn = await asyncpg.connect(dsn)
        try:
            await load_demo(conn)
        finally:
            await conn.close()
        yield dsn
        return
    async with throwaway_database(admin_dsn, prefix="pgbot_quality", keep=keep) as target:
        conn = await asyncpg.connect(target)
        try:
            await load_demo(conn)
        finally:
            await conn.close()
        yield target


class Executor:
    """Runs reference and predicted SQL read-only on one connection, for comparison only."""

    def __init__(self, conn: asyncpg.Connection, *, timezone: str) -> None:
        self._conn = conn
        self.timezone = timezone
        self._guard = SqlGuard()

    @classmethod
    async def connect(cls, dsn: str) -> Executor:
        conn = await asyncpg.connect(dsn)
        return cls(conn, timezone=str(await conn.fetchval("SHOW TimeZone")))

    async def run(self, sql: str) -> ResultSet:
        checked = self._guard.check_read(sql)  # model output is executed here too: same guard as pgbot
        async with self._conn.transaction(readonly=True):
            await self._conn.execute(f"SET LOCAL statement_timeout = {COMPARE_TIMEOUT_MS}")
            stmt = await self._conn.prepare(checked.sql)
            columns = [a.name for a in stmt.get_attributes()]
            rows = await (await stmt.cursor()).fetch(MAX_COMPARE_ROWS) if columns else []
        return normalize_rows([tuple(r) for r in rows], columns=columns, tz=self.timezone)

    async def aclose(self) -> None:
        await self._conn.close()


async def score(executor: Executor, outcome: Outcome, question: Question, expected: ResultSet) -> Outcome:
    """Run ``outcome.sql`` and set its status against ``expected``."""
    if outcome.sql is None:
        if outcome.status == "ok":
            outcome.status = "no-sql"
        return outcome
    try:
        got = await executor.run(outcome.sql)
    except GuardError as exc:
        outcome.status, outcome.detail = "refused", exc.user_message
        return outcome
    except asyncpg.PostgresError as exc:
        outcome.status, outcome.detail = "sql-error", str(exc).splitlines()[0][:200]
        return outcome
    outcome.status = "ok" if matches(expected, got, ordered=question.ordered) else "wrong"
    if outcome.status == "wrong":
        outcome.detail = f"{len(got.rows)} rows x {len(got.columns)} cols; expected {len(expected.rows)} x " \
                         f"{len(expected.columns)}"
    return outcome


# -- the two systems ------------------------------------------------------------------------------


async def ask_pgbot(agent: Agent, llm: CountingLlm, question: Question) -> Outcome:
    llm.reset()
    thread = f"{question.id}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    reply = await _final(agent, _message(question.question, thread))
    clarified = reply.kind is ReplyKind.INFO and reply.clarification
    if clarified:
        reply = await _final(agent, _message(CLARIFICATION_REPLY, thread))
    outcome = Outcome("pgbot", question.id, "ok", seconds=time.perf_counter() - started, calls=llm.calls,
                      prompt_tokens=llm.prompt_tokens, completion_tokens=llm.completion_tokens, clarified=clarified)
    if reply.kind is not ReplyKind.ANSWER:
        outcome.status, outcome.detail = "error", reply.text[:200]
    outcome.sql = reply.sql[-1] if reply.sql else None
    return outcome


async def ask_baseline(llm: CountingLlm, schema: str, question: Question) -> Outcome:
    llm.reset()
    started = time.perf_counter()
    try:
        completion = await llm.complete(baseline_messages(schema, question.question), [])
    except PgbotError as exc:
        return Outcome("baseline", question.id, "error", detail=exc.user_message[:200],
                       seconds=time.perf_counter() - started, calls=llm.calls)
    return Outcome("baseline", question.id, "ok", sql=extract_sql(completion.content),
                   seconds=time.perf_counter() - started, calls=llm.calls, prompt_tokens=llm.prompt_tokens,
                   completion_tokens=llm.completion_tokens)


async def _final(agent: Agent, message: Message) -> Reply:
    replies = [r async for r in agent.handle(message)]
    return replies[-1]


def _message(text: str, thread: str) -> Message:
    return Message(platform="bench", workspace="quality", channel="bench", thread=thread, user="bench", text=text)


# -- the whole run --------------------------------------------------------------------------------


async def run_benchmark(
    *, settings: Settings, llm: LlmClient, questions: Sequence[Question], systems: Sequence[str] = SYSTEMS,
    dsn: str | None = None, admin_dsn: str = DEFAULT_ADMIN_DSN, endpoint: str = "?", smoke: bool = False,
    disabled: Sequence[str] = (), keep_database: bool = False, progress: bool = False,
) -> Report:
    """Load the demo, ask every question with each system, score. ``llm`` is closed at the end."""
    counting = CountingLlm(llm)
    async with demo_database(dsn=dsn, admin_dsn=admin_dsn, keep=keep_database) as target:
        # Only the model and the techniques come from the config: the database is the demo, context in memory.
        database = DatabaseSettings.model_validate({"dsn": target})
        bench_settings = Settings(llm=settings.llm, accuracy=settings.accuracy, databases={"quality": database})
        agent = build_agent(bench_settings, llm=counting)
        executor = await Executor.connect(target)
        report = Report(list(questions), tuple(systems), endpoint=endpoint, model=settings.llm.model,
                        database=urlsplit(target).path.lstrip("/"), timezone=executor.timezone, smoke=smoke,
                        disabled=tuple(disabled))
        try:
            schema = await whole_schema(agent.databases.get("quality")) if "baseline" in systems else ""
            for index, question in enumerate(questions, 1):
                expected = await executor.run(question.sql)
                for system in systems:
                    if system == "pgbot":
                        outcome = await ask_pgbot(agent, counting, question)
                    else:
                        outcome = await ask_baseline(counting, schema, question)
                    report.outcomes[(system, question.id)] = await score(executor, outcome, question, expected)
                if progress:
                    marks = " ".join(f"{s}={report.outcomes[(s, question.id)].status}" for s in systems)
                    print(f"[{index}/{len(questions)}] {question.id}: {marks}", flush=True)
        finally:
            await executor.aclose()
            await agent.aclose()  # closes the LLM client too
    return report

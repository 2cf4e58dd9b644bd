"""The accuracy techniques around one turn, each switched by ``[accuracy]`` in the config.

Before the model is called, :meth:`Accuracy.prepare` builds the prompt: a system message that is the same for
every question (rules, the PostgreSQL version, the schema's stable part, value hints when they all fit) and
the question's own context (resolved relative dates with the database's clock, value hints for the tables in
play otherwise, and examples the team marked right), sent with the question (see core.prompt.system for why in that
order). After it answered, :meth:`Accuracy.finish_answer` adds the notes people need to trust it (the dates
used, or that no query backs the numbers) and :meth:`Accuracy.remember` keeps what was asked and run for a
later 👍/👎. The optional parts never fail a turn: a problem is logged and the prompt goes without that part.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from core.config import AccuracySettings, Settings
from core.db.base import Database
from core.db.registry import DatabaseRegistry
from core.db.server_facts import ServerFacts
from core.errors import DatabaseError, PgbotError
from core.llm.base import ChatTurn
from core.messages import AnswerNotes, Reply, ReplyKind, Vote
from core.permissions import resolve_role
from core.prompt.examples import RankedExample, rank, render
from core.prompt.feedback import AnswerLog, AnswerRecord, FeedbackStore, MemoryAnswerLog
from core.prompt.relative_dates import ResolvedDates, resolve_dates
from core.prompt.schema_context import SchemaParts
from core.prompt.shape_hints import shape_hints
from core.prompt.system import build_question_context, build_system_prompt, question_message
from core.prompt.value_hints import ValueHints

log = structlog.get_logger(__name__)
T = TypeVar("T")

_DIGIT = re.compile(r"\d")
UNVERIFIED_NOTE = "(No query was run for this answer, so its numbers are not checked against the database.)"
MAX_CLARIFYING_PROSE = 400


@dataclass(frozen=True, slots=True)
class TurnPrompt:
    """The prompt of one turn, and what the answer must state afterwards."""

    system: str  # the same for every question on this database and role
    context: str = ""  # this question's own: sent with it, after the thread's history
    dates: ResolvedDates | None = None
    examples: int = 0
    parts: tuple[str, ...] = field(default_factory=tuple)  # which optional parts made it in (logs, tests)

    def question_turn(self, question: str) -> ChatTurn:
        """The user message the model is sent for ``question`` (the thread's history keeps it plain)."""
        return ChatTurn(role="user", content=question_message(self.context, question))


class Accuracy:
    def __init__(self, *, settings: Settings, answers: AnswerLog | None = None,
                 feedback: FeedbackStore | None = None, facts: ServerFacts | None = None) -> None:
        self.config: AccuracySettings = settings.accuracy
        self.facts = facts or ServerFacts()
        self.answers = answers or MemoryAnswerLog(ttl_s=settings.redis.context_ttl_s)
        self.feedback_store = feedback or FeedbackStore()
        cfg = self.config
        self.value_hints = ValueHints(
            max_distinct=cfg.value_hints_max_distinct, max_values=cfg.value_hints_max_values,
            max_columns=cfg.value_hints_max_columns, ttl_s=cfg.value_hints_ttl_s,
        )

    # -- before the model -------------------------------------------------------------------------

    async def prepare(
        self, *, db: Database, role: str | None, question: str, databases: Sequence[str], schema: SchemaParts,
        clarify_tool: bool = True, readable: Collection[str] | None = None, more_tools: bool = False,
    ) -> TurnPrompt:
        """``readable``: the tables the asking role can read; examples naming others are left out;
        ``more_tools``: whether the more_tools tool is offered (core.tools.toolsets)."""
        cfg = self.config
        facts = await self.facts.get(db)
        dates = await self._optional("relative_dates", db, resolve_dates(db, role=role, question=question)) \
            if cfg.relative_dates else None
        hints = await self._optional("value_hints", db, self.value_hints.sections(db, role=role, question=question)) \
            if cfg.value_hints else None
        examples = await self._examples(db, question, readable) if cfg.examples and cfg.max_examples else []
        shapes = shape_hints(question) if cfg.shape_hints else ""
        system = build_system_prompt(
            database=db.name, databases=databases, schema_context=schema.stable,
            version=facts.version.split(" (")[0] if cfg.server_version else None,  # no distro suffix
            today=f"{facts.now():%Y-%m-%d} (database time zone {facts.tz})" if cfg.relative_dates else "",
            clarify=cfg.clarifying_questions, clarify_tool=clarify_tool,
            migrations=db.settings.migrations_dir is not None, more_tools=more_tools,
            value_hints=hints.stable if hints else "",
        )
        context = build_question_context(
            dates=dates.prompt_text() if dates else "", schema_detail=schema.question,
            value_hints=hints.question if hints else "",
            shape_hints=shapes, examples=render(examples),
        )
        parts = tuple(name for name, present in (
            ("version", cfg.server_version), ("dates", dates is not None),
            ("value_hints", bool(hints and (hints.stable or hints.question))),
            ("shape_hints", bool(shapes)),
            ("examples", bool(examples)),
        ) if present)
        log.debug("prompt_built", database=db.name, parts=parts, system_chars=len(system), context_chars=len(context))
        return TurnPrompt(system=system, context=context, dates=dates, examples=len(examples), parts=parts)

    async def _examples(
        self, db: Database, question: str, readable: Collection[str] | None
    ) -> list[RankedExample]:
        candidates = await self._optional("examples", db, self.feedback_store.positive(db))
        return rank(question, candidates or [], limit=self.config.max_examples, readable=readable)

    @staticmethod
    async def _optional(part: str, db: Database, work: Awaitable[T]) -> T | None:
        """Await ``work``; a database problem drops this part of the prompt (logged), never the turn."""
        try:
            return await work
        except DatabaseError as exc:
            log.warning("prompt_part_skipped", part=part, database=db.name, error=exc.user_message[:200])
            return None

    # -- after the model --------------------------------------------------------------------------

    def is_clarifying(self, answer: str, *, ran_sql: bool, called_tools: bool) -> bool:
        """A short prose question with no tool use at all is a clarifying question (text-only models)."""
        text = answer.strip()
        return (self.config.clarifying_questions and not ran_sql and not called_tools
                and text.endswith("?") and len(text) <= MAX_CLARIFYING_PROSE)

    def finish_answer(self, answer: str, *, prompt: TurnPrompt, ran_sql: bool) -> tuple[str, AnswerNotes]:
        """The answer as posted, plus what it notes for the reply: the dates used, or that no query backs it."""
        dates = prompt.dates.answer_note() if prompt.dates is not None and ran_sql else None
        unverified = not ran_sql and self.config.unverified_note and bool(_DIGIT.search(answer))
        said = [note for note in (dates, UNVERIFIED_NOTE if unverified else None) if note]
        return "\n\n".join([answer, *said]), AnswerNotes(dates=dates, unverified=unverified,
                                                            examples=prompt.examples)

    async def remember(self, record: AnswerRecord) -> None:
        """Keep an answer for later feedback; a context-store outage must not lose the answer itself."""
        try:
            await self.answers.remember(record)
        except PgbotError as exc:
            log.warning("answer_not_remembered", answer_id=record.answer_id, error=exc.user_message)

    # -- feedback ---------------------------------------------------------------------------------

    async def feedback(
        self, *, databases: DatabaseRegistry, answer_id: str, user: str, helpful: bool, groups: tuple[str, ...] = ()
    ) -> Reply:
        record = await self.answers.recall(answer_id)
        if record is None:
            return Reply(
                kind=ReplyKind.INFO,
                text="pgbot no longer remembers that answer (answers are kept as long as their thread's context), "
                     "so the vote was not recorded.",
            )
        db = databases.get(record.database)
        resolve_role(database=record.database, settings=db.settings, identity=user, groups=groups)  # no access, no vote
        await self.feedback_store.record(db, answer=record, voted_by=user, helpful=helpful)
        if helpful and record.sql:
            text = ("Thanks! 👍 recorded: this question and its SQL will help answer similar questions on "
                    f"'{record.database}'.")
        elif helpful:
            text = "Thanks! 👍 recorded."
        else:
            text = ("Thanks, 👎 recorded: this answer will not be used as an example. Rephrasing the question or "
                    "naming the tables and columns you mean often helps.")
        return Reply(kind=ReplyKind.INFO, text=text, database=record.database,
                     vote=Vote(answer_id=answer_id, helpful=helpful))

    async def aclose(self) -> None:
        await self.answers.aclose()

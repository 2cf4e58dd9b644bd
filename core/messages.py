"""The platform-neutral message types that cross the adapter/core boundary.

Adapters turn platform events into :class:`Message` and render :class:`Reply` back; no SDK type ever
crosses into ``core``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.card_state import Approvers, CardState
from core.column_kinds import column_kinds

Cell = str | int | float | bool | None
"""A result cell as shown to people and serialised to JSON: Postgres values are converted once."""


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message addressed to pgbot, normalised by an adapter."""

    platform: str
    workspace: str
    channel: str
    thread: str
    user: str
    text: str
    user_name: str = ""
    event_id: str | None = None  # the platform's id for this delivery's message: a redelivery is handled once
    # Platform groups the sender belongs to, prefixed by the adapter (``discord-role:<id>``); the roles table
    # may map them to database roles (core.permissions). Resolved per message, so role changes apply at once.
    groups: tuple[str, ...] = ()
    # Set on an "Edit SQL" submission (core.agent.edit_actions): ``text`` is the edited SQL of this answer, run as the
    # sender's role instead of being read by the model.
    edit_of: str | None = None

    @property
    def identity(self) -> str:
        """The key used in the config's role and approver maps, e.g. ``slack:U024BE7LH``."""
        return f"{self.platform}:{self.user}"

    @property
    def thread_key(self) -> str:
        """Identifies the conversation; context and ordering are per thread."""
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"


@dataclass(frozen=True, slots=True)
class ResultTable:
    """A query result ready for display; ``truncated`` says rows were cut at the cap."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    truncated: bool = False
    row_cap: int | None = None
    # For people (core.display): each column's kind ("int", "numeric", "timestamptz", "json", … see
    # core.column_kinds), the session's TimeZone the times are shown in, and how long the query took.
    kinds: tuple[str, ...] = ()
    time_zone: str | None = None
    duration_ms: float | None = None

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def to_json(self) -> dict[str, object]:
        return {"columns": list(self.columns), "rows": [list(r) for r in self.rows], "truncated": self.truncated}


class ReplyKind(enum.StrEnum):
    WORKING = "working"  # posted at once, edited into the answer later
    ANSWER = "answer"  # the model's final answer (with the SQL it ran)
    RESULT = "result"  # a direct command result (/sql, /tables) with no model involved
    APPROVAL = "approval"  # a change waiting for Approve / Reject
    OUTCOME = "outcome"  # what happened after a decision
    INFO = "info"  # help text, database switched, ...
    ERROR = "error"  # a PgbotError's user_message or "internal error, id=..."


@dataclass(frozen=True, slots=True)
class ApprovalPrompt:
    """What an approver sees: the SQL that will run and what it will touch. ``sql`` is the statement with its
    passwords masked (core.sql_secrets); ``sql_hash`` is the hash of the real statement, which is what runs."""

    action_id: str
    database: str
    role: str | None
    requested_by: str
    sql: str
    sql_hash: str
    kind: str
    summary: str
    preview: ResultTable | None
    expires_at: float
    # What the approver must also know: nobody can approve here yet (and how to fix that), passwords masked.
    notes: tuple[str, ...] = ()
    # For people (core.cards), apart from what the model is told: the header's question, the before → after
    # lines of the changed columns (one per row key), what the change does in words, and who may approve.
    question: str = ""
    diff: tuple[str, ...] = ()
    diff_note: str = ""
    details: tuple[str, ...] = ()
    approvers: Approvers = field(default_factory=Approvers)


@dataclass(frozen=True, slots=True)
class ChartImage:
    """A chart drawn from a result (core.charts): PNG bytes for adapters to upload beside the answer.

    ``notes`` say what the chart leaves out or changed (rows cut, categories summed, points averaged): they
    are also in the reply's text, so nothing is dropped silently. ``sql`` is the statement it was drawn from.
    """

    png: bytes
    kind: str  # "line", "bar" or "scatter"
    title: str
    width: int  # pixels
    height: int
    notes: tuple[str, ...] = ()
    sql: str = ""

    @property
    def filename(self) -> str:
        """A fixed, safe name: titles come from people and models, so they never reach a file name."""
        return f"chart-{self.kind}.png"


ScheduleChange = Literal["pause", "resume", "delete"]
"""What a schedule's buttons (and ``pgbot schedule``) do to it."""


@dataclass(frozen=True, slots=True)
class ScheduleCard:
    """A schedule as chat shows it, with Pause (or Resume) and Delete buttons that carry its id back to core."""

    schedule_id: str
    summary: str
    paused: bool


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A CSV file an export wrote on pgbot's host: chat adapters upload it (never naming the path), the terminal
    names the path. ``private``: deliver it to the clicker alone (their role may read more than the thread saw)."""

    path: Path
    rows: int
    size_bytes: int
    private: bool = False


@dataclass(frozen=True, slots=True)
class AnswerNotes:
    """What the accuracy checks added to an answer (core.prompt.accuracy), also said in its text."""

    dates: str | None = None  # the note on the dates the question's relative words meant
    unverified: bool = False  # no query backs the numbers in the answer
    examples: int = 0  # 👍 examples the prompt carried


@dataclass(frozen=True, slots=True)
class Vote:
    """A recorded 👍/👎: on which answer, and which way."""

    answer_id: str
    helpful: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """One thing pgbot says in a thread. Adapters render every field they can."""

    kind: ReplyKind
    text: str
    sql: tuple[str, ...] = ()
    table: ResultTable | None = None
    chart: ChartImage | None = None  # a chart of the result, when asked for (core.charts)
    approval: ApprovalPrompt | None = None
    answer_id: str | None = None  # set on answers that can receive 👍/👎 feedback
    database: str | None = None
    error_id: str | None = None
    role: str | None = None  # the database role the statements ran as (None: the login role), for the context line
    schedules: tuple[ScheduleCard, ...] = ()  # schedules listed or just created, each with its buttons
    undo_id: str | None = None  # an approved change whose rows pgbot kept: adapters offer an Undo button (core.undo)
    card: CardState | None = None  # a decision's reply: where the approval card now stands (core.cards words it)
    # Identities core itself put in ``text`` (the clicker, the requester): adapters show them as mentions.
    mentions: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # a clarifying question's answers to click; a click is sent as the clicker's reply
    clarification: bool = False  # a question back to the asker instead of an answer (shown as a question)
    turn_id: str | None = None  # a WORKING reply's turn: what its Cancel button names (core.threads.turn_status)
    export: ExportFile | None = None  # a CSV file to deliver with the reply
    notes: AnswerNotes | None = None  # on an ANSWER: the accuracy notes it carries
    vote: Vote | None = None  # on the reply to a 👍/👎: what was recorded
    edit_of: str | None = None  # on an edited SQL's answer: the answer whose SQL was edited (core.agent.edit_actions)
    action_id: str | None = None  # on a decision's outcome or refusal: the change it is about

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind.value, "text": self.text, "sql": list(self.sql)}
        if self.table is not None:
            out.update(self.table.to_json())
        if self.approval is not None:
            out["pending"] = {
                "action_id": self.approval.action_id,
                "database": self.approval.database,
                "sql": self.approval.sql,
                "summary": self.approval.summary,
            }
        if self.chart is not None:
            out["chart"] = {"kind": self.chart.kind, "title": self.chart.title, "notes": list(self.chart.notes)}
        if self.database:
            out["database"] = self.database
        if self.schedules:
            out["schedules"] = [{"id": c.schedule_id, "summary": c.summary, "paused": c.paused}
                                for c in self.schedules]
        if self.undo_id:
            out["undo_id"] = self.undo_id
        return out


def new_id() -> str:
    """A short random id for answers, actions and errors."""
    return uuid.uuid4().hex[:12]


class CutText(str):
    """A value the database already cut (see core.db.postgres.bounded_select); knows its full length."""

    full_length: int
    unit: str  # "chars", or "bytes" for bytea (shown as hex text)

    def __new__(cls, value: str, *, full_length: int, unit: str = "chars") -> CutText:
        made = super().__new__(cls, value)
        made.full_length, made.unit = full_length, unit
        return made


def to_cell(value: object, *, max_chars: int = 2000) -> Cell:
    """Convert one Postgres value for display; huge text and bytea are cut so chat stays readable."""
    if isinstance(value, CutText):
        return value[:max_chars] + f"… ({value.full_length} {value.unit})"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, decimal.Decimal):
        text = str(value)
    elif isinstance(value, dt.timedelta):
        text = interval_text(value)
    elif isinstance(value, dt.datetime | dt.date | dt.time):
        text = value.isoformat()
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        shown = raw[: max_chars // 2].hex()
        text = f"\\x{shown}" + (f"… ({len(raw)} bytes)" if len(raw) * 2 > max_chars else "")
        return text
    elif isinstance(value, dict | list):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    if len(text) > max_chars:
        return text[:max_chars] + f"… ({len(text)} chars)"
    return text


def interval_text(value: dt.timedelta) -> str:
    """An interval as Postgres prints it (``3 days 04:05:06.5``), not Python's ``3 days, 4:05:06.500000``."""
    micros = abs(value) // dt.timedelta(microseconds=1)
    days, rest = divmod(micros, 86_400_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    if rest or not days:
        clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
        parts.append(clock + (f".{fraction:06d}".rstrip("0") if fraction else ""))
    text = " ".join(parts)
    return f"-{text}" if value < dt.timedelta(0) else text


def rows_to_table(
    columns: Sequence[str], rows: Sequence[Sequence[object]], *, truncated: bool, row_cap: int | None,
    max_cell_chars: int = 2000, types: Sequence[str] | None = None, time_zone: str | None = None,
    duration_ms: float | None = None,
) -> ResultTable:
    """Cells for display and JSON; ``types`` (Postgres type names) give each column its kind, else the
    Python values do (core.column_kinds)."""
    return ResultTable(
        columns=tuple(columns),
        rows=tuple(tuple(to_cell(v, max_chars=max_cell_chars) for v in row) for row in rows),
        truncated=truncated,
        row_cap=row_cap,
        kinds=column_kinds(len(columns), rows, types=types),
        time_zone=time_zone,
        duration_ms=duration_ms,
    )

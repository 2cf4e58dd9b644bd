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
from typing import Literal

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
    """What an approver sees: exactly the SQL that will run and what it will touch."""

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


ScheduleChange = Literal["pause", "resume", "delete"]
"""What a schedule's buttons (and ``pgbot schedule``) do to it."""


@dataclass(frozen=True, slots=True)
class ScheduleCard:
    """A schedule as chat shows it, with Pause (or Resume) and Delete buttons that carry its id back to core."""

    schedule_id: str
    summary: str
    paused: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """One thing pgbot says in a thread. Adapters render every field they can."""

    kind: ReplyKind
    text: str
    sql: tuple[str, ...] = ()
    table: ResultTable | None = None
    approval: ApprovalPrompt | None = None
    answer_id: str | None = None  # set on answers that can receive 👍/👎 feedback
    database: str | None = None
    error_id: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    schedules: tuple[ScheduleCard, ...] = ()  # schedules listed or just created, each with its buttons

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
        if self.database:
            out["database"] = self.database
        if self.schedules:
            out["schedules"] = [{"id": c.schedule_id, "summary": c.summary, "paused": c.paused}
                                for c in self.schedules]
        return out


def new_id() -> str:
    """A short random id for answers, actions and errors."""
    return uuid.uuid4().hex[:12]


def to_cell(value: object, *, max_chars: int = 2000) -> Cell:
    """Convert one Postgres value for display; huge text and bytea are cut so chat stays readable."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, decimal.Decimal):
        text = str(value)
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


def rows_to_table(
    columns: Sequence[str], rows: Sequence[Sequence[object]], *, truncated: bool, row_cap: int | None,
    max_cell_chars: int = 2000,
) -> ResultTable:
    return ResultTable(
        columns=tuple(columns),
        rows=tuple(tuple(to_cell(v, max_chars=max_cell_chars) for v in row) for row in rows),
        truncated=truncated,
        row_cap=row_cap,
    )

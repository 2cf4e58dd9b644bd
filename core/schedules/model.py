"""A schedule as stored: what to run, as whom, when, and where the answer goes."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from dataclasses import dataclass, field
from typing import Literal

from core.charts import KINDS
from core.errors import ScheduleError
from core.messages import ScheduleCard

ChartChoice = Literal["auto", "line", "bar", "scatter"]
"""The chart a report posts with its table: "auto" lets the result's shape choose (core.charts)."""
CHART_CHOICES: tuple[ChartChoice, ...] = ("auto", *KINDS)


class ScheduleKind(enum.StrEnum):
    REPORT = "report"  # re-run the SQL that answered a question; post the table
    HEALTH = "health"  # run the health check; post only what is new, worse or cleared


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a schedule posts, as the adapters address a conversation (``Message.thread_key``'s parts)."""

    platform: str
    workspace: str
    channel: str
    thread: str

    @classmethod
    def from_thread_key(cls, key: str) -> Destination:
        """``platform:workspace:channel:thread`` (core.messages.Message.thread_key) back into its parts."""
        parts = key.split(":", 3)
        if len(parts) != 4 or not all(parts):
            raise ValueError(f"not a thread key: {key[:80]!r}")
        return cls(*parts)

    def same_channel(self, other: Destination) -> bool:
        return (self.platform, self.workspace, self.channel) == (other.platform, other.workspace, other.channel)


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    database: str
    kind: ScheduleKind
    cron: str
    timezone: str
    question: str
    sql: str  # the statement that answered the question (reports); empty for health checks
    destination: Destination
    created_by: str
    role: str | None  # the creator's role when it was created; every run must still map to it
    groups: tuple[str, ...]
    next_due: dt.datetime
    created_at: dt.datetime | None = None
    paused: bool = False
    stopped_reason: str | None = None  # set when pgbot stopped it (lost mapping, SQL refused now)
    last_due: dt.datetime | None = None
    last_run_at: dt.datetime | None = None
    last_outcome: str | None = None
    last_findings: dict[str, dict[str, object]] = field(default_factory=dict)
    chart: ChartChoice | None = None  # reports only: drawn from each run's result; None: the table alone

    @property
    def when(self) -> str:
        from core.schedules.timing import describe

        return f"{describe(self.cron)} ({self.timezone})"

    def summary(self) -> str:
        chart = f" with a {'' if self.chart == 'auto' else f'{self.chart} '}chart" if self.chart else ""
        what = "health check" if self.kind is ScheduleKind.HEALTH else f"report{chart}: {self.question or self.sql}"
        state = f" — stopped: {self.stopped_reason}" if self.stopped_reason else (" — paused" if self.paused else "")
        return f"`{self.id}` {self.when}, {what[:200]} on '{self.database}'{state}"

    def card(self) -> ScheduleCard:
        return ScheduleCard(schedule_id=self.id, summary=self.summary(), paused=self.paused)


def new_schedule_id() -> str:
    """Short enough to type (``pgbot schedule pause ID``); buttons are checked against who clicks anyway."""
    return secrets.token_hex(6)


def chart_choice(value: str | None) -> ChartChoice | None:
    """A chart choice from a person, a model or the table ("auto", "line", "bar", "scatter"; None or "" for
    none); anything else is refused, never guessed."""
    if value is None or not value.strip():
        return None
    word = value.strip().lower()
    if word not in CHART_CHOICES:
        raise ScheduleError(f"A schedule's chart is one of {', '.join(CHART_CHOICES)}, not {value[:40]!r}.")
    return word

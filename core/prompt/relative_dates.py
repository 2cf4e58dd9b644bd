"""Relative dates ("last month", "this year", "last 7 days") resolved from the database's own clock.

Models guess "now" from their training data and shift month boundaries by the client's time zone. pgbot
finds the common phrases in the question, evaluates their ranges with the database's ``now()`` and
``TimeZone`` in one query, states the concrete ranges in the prompt (with the equivalent SQL), and notes
the dates used under the answer so people can see what "last month" meant.

Conventions (stated to the model): "last/previous <unit>" is the previous calendar unit, "this <unit>" the
current one, "last N <units>" and "past <unit>" a rolling window ending now; weeks start on Monday
(``date_trunc('week', …)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from core.db.base import Connection, Database

_UNITS = r"(hour|day|week|month|quarter|year)s?"
_WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "thirty": 30, "ninety": 90,
}
_NUMBER = r"(\d{1,4}|" + "|".join(_WORD_NUMBERS) + ")"
_ROLLING_N = re.compile(rf"\b(?:last|past|previous|trailing|recent)\s+{_NUMBER}\s+{_UNITS}\b", re.I)
_DAY = re.compile(r"\b(today|yesterday)\b", re.I)
_THIS = re.compile(r"\b(?:this|current)\s+(week|month|quarter|year)\b", re.I)
_TO_DATE = re.compile(r"\b(?:(week|month|quarter|year)[\s-]to[\s-]date|(ytd|qtd|mtd|wtd))\b", re.I)
_LAST = re.compile(r"\b(?:last|previous|prior)\s+(week|month|quarter|year)\b", re.I)
_PAST = re.compile(r"\bpast\s+(week|month|quarter|year)\b", re.I)
_ABBREVIATIONS = {"ytd": "year", "qtd": "quarter", "mtd": "month", "wtd": "week"}
MAX_PHRASES = 6


@dataclass(frozen=True, slots=True)
class DatePhrase:
    """One relative-date phrase and the SQL expressions of its half-open range [start, end)."""

    label: str
    start_sql: str
    end_sql: str
    calendar: bool  # calendar-aligned (shown as dates) or a rolling window (shown as timestamps)


@dataclass(frozen=True, slots=True)
class ResolvedRange:
    phrase: DatePhrase
    start: str  # timestamptz as text, in the database's time zone
    end: str
    first_day: str
    last_day: str  # inclusive
    start_minute: str  # "YYYY-MM-DD HH:MI", for rolling windows


@dataclass(frozen=True, slots=True)
class ResolvedDates:
    now: str
    tz: str
    ranges: tuple[ResolvedRange, ...]

    def prompt_text(self) -> str:
        lines = [
            f"Relative dates in the question, resolved from the database's clock (now() = {self.now}, "
            f"TimeZone {self.tz}; weeks start on Monday):"
        ]
        for r in self.ranges:
            lines.append(
                f'- "{r.phrase.label}": from {r.start} (inclusive) to {r.end} (exclusive), i.e. '
                f"col >= {r.phrase.start_sql} AND col < {r.phrase.end_sql}"
            )
        lines.append("Use these ranges (or the same now()-based expressions) and say which dates you used.")
        return "\n".join(lines)

    def answer_note(self) -> str:
        shown = []
        for r in self.ranges:
            if r.phrase.calendar:
                span = r.first_day if r.first_day == r.last_day else f"{r.first_day} to {r.last_day}"
            else:
                span = f"{r.start_minute} to now"
            shown.append(f"{r.phrase.label} = {span}")
        return f"Dates used (database time zone {self.tz}): " + "; ".join(shown) + "."


def _interval(n: int, unit: str) -> str:
    if unit == "quarter":
        return f"interval '{3 * n} months'"
    return f"interval '{n} {unit}{'s' if n != 1 else ''}'"


def _calendar(label: str, unit: str, *, back: int) -> DatePhrase:
    trunc = f"date_trunc('{unit}', now())"
    if back == 0:
        return DatePhrase(label, trunc, f"{trunc} + {_interval(1, unit)}", calendar=True)
    start = f"{trunc} - {_interval(back, unit)}"
    end = trunc if back == 1 else f"{trunc} - {_interval(back - 1, unit)}"
    return DatePhrase(label, start, end, calendar=True)


def _rolling(label: str, n: int, unit: str) -> DatePhrase:
    return DatePhrase(label, f"now() - {_interval(n, unit)}", "now()", calendar=False)


def find_phrases(question: str) -> list[DatePhrase]:
    """The relative-date phrases in ``question``, in order of appearance, each once (pure; no database)."""
    found: list[tuple[int, DatePhrase]] = []
    for m in _ROLLING_N.finditer(question):
        raw, unit = m.group(1).lower(), m.group(2).lower()
        n = int(raw) if raw.isdigit() else _WORD_NUMBERS[raw]
        if 0 < n <= 1000:
            found.append((m.start(), _rolling(f"last {n} {unit}{'s' if n != 1 else ''}", n, unit)))
    for m in _DAY.finditer(question):
        word = m.group(1).lower()
        found.append((m.start(), _calendar(word, "day", back=0 if word == "today" else 1)))
    for m in _THIS.finditer(question):
        unit = m.group(1).lower()
        found.append((m.start(), _calendar(f"this {unit}", unit, back=0)))
    for m in _TO_DATE.finditer(question):
        unit = (m.group(1) or _ABBREVIATIONS[m.group(2).lower()]).lower()
        found.append((m.start(), _calendar(f"this {unit}", unit, back=0)))
    for m in _LAST.finditer(question):
        unit = m.group(1).lower()
        found.append((m.start(), _calendar(f"last {unit}", unit, back=1)))
    for m in _PAST.finditer(question):
        unit = m.group(1).lower()
        found.append((m.start(), _rolling(f"past {unit}", 1, unit)))
    seen: set[str] = set()
    phrases = []
    for _, phrase in sorted(found, key=lambda item: item[0]):
        if phrase.label not in seen:
            seen.add(phrase.label)
            phrases.append(phrase)
    return phrases[:MAX_PHRASES]


async def resolve_dates(db: Database, *, role: str | None, question: str) -> ResolvedDates | None:
    """Evaluate the question's phrases on the database in one read-only query; None when there are none."""
    phrases = find_phrases(question)
    if not phrases:
        return None
    columns = ["now()::text", "current_setting('TimeZone')"]
    for p in phrases:  # the expressions come from fixed templates above, never from the question's text
        columns += [
            f"({p.start_sql})::text", f"({p.end_sql})::text", f"({p.start_sql})::date::text",
            f"(({p.end_sql}) - interval '1 microsecond')::date::text",
            f"to_char({p.start_sql}, 'YYYY-MM-DD HH24:MI')",
        ]
    sql = "SELECT " + ", ".join(columns)

    async def work(conn: Connection) -> asyncpg.Record:
        return await conn.fetchrow(sql)

    row = await db.run(work, role=role, read_only=True)
    values = [str(v) for v in row.values()]
    ranges = tuple(
        ResolvedRange(p, *values[2 + 5 * i : 7 + 5 * i]) for i, p in enumerate(phrases)
    )
    return ResolvedDates(now=values[0], tz=values[1], ranges=ranges)

"""When a schedule runs: plain words or a 5-field cron expression → a cron expression, and its next times.

Words are translated to cron first ("every Monday at 9:00" → ``0 9 * * 1``), so one evaluator computes every
schedule: cronsim (healthchecks.io's cron evaluator), which handles daylight-saving changes like Debian's
cron. A time that does not exist on the day clocks jump forward (02:30 in Europe/Berlin on 2026-03-29) runs
at the first minute after the jump (03:00); a time that exists twice when clocks go back (02:30 on
2026-10-25) runs once, at the first of the two; a job for every hour (``*`` hours) runs in both repeated
hours, since that hour really passes twice.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from core.errors import ScheduleError

MAX_WHEN_CHARS = 120
_CRON_CHARS = re.compile(r"^[0-9A-Za-z*/,\-#? ]+$")
_DAYS = {"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
_DAY_ALIASES = {**{d[:3]: n for d, n in _DAYS.items()}, "tues": 2, "wed": 3, "thur": 4, "thurs": 4}
_SHORTCUTS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
              "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *"}
EXAMPLES = ('"every Monday at 9:00", "every hour", "daily at 18:30", "every weekday at 8am", '
            '"every 15 minutes", "monthly on the 1st at 9:00", or cron such as "0 9 * * MON"')
_TIME = r"(?P<time>noon|midnight|\d{1,2}(?::\d{2})?\s*(?:am|pm)?)"


@dataclass(frozen=True, slots=True)
class Cadence:
    """A validated cron expression (5 fields) and what it means in words."""

    cron: str
    description: str


def parse_when(text: str, *, min_interval_minutes: int = 5) -> Cadence:
    """Words or cron → :class:`Cadence`, or :class:`ScheduleError` saying what is accepted. Schedules that
    would run more often than every ``min_interval_minutes`` are refused (a chat channel is not a log)."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError(f"Say when the schedule runs, e.g. {EXAMPLES}.")
    if len(text) > MAX_WHEN_CHARS or "\x00" in text:
        raise ScheduleError(f"That schedule time is too long; use words or cron, e.g. {EXAMPLES}.")
    spoken = " ".join(text.strip().lower().replace(",", " , ").split()).replace(" ,", ",")
    cron = _SHORTCUTS.get(spoken) or _from_words(spoken) or _from_cron(text.strip())
    if cron is None:
        raise ScheduleError(f"pgbot does not understand {_quote(text)} as a time. Try {EXAMPLES}.")
    _check_interval(cron, min_interval_minutes)
    return Cadence(cron=cron, description=describe(cron))


def describe(cron: str) -> str:
    """"At 09:00 on Monday": cronsim's explanation, or the expression itself where it has none."""
    from cronsim.explain import explain

    try:
        return explain(cron)
    except (ValueError, IndexError, KeyError):  # explain covers less than the evaluator accepts
        return f"cron {cron}"


def next_due(cron: str, zone: ZoneInfo, *, after: dt.datetime) -> dt.datetime:
    """The first run strictly after ``after`` (aware), as an aware UTC datetime."""
    try:
        local = next(CronSim(cron, after.astimezone(zone)))
    except (CronSimError, StopIteration) as exc:
        raise ScheduleError(f"cron {_quote(cron)} has no next run time.") from exc
    return local.astimezone(dt.UTC)


def zone_named(name: str) -> ZoneInfo:
    """An IANA time zone (Europe/Berlin, UTC); anything else is a :class:`ScheduleError`."""
    if not name or len(name) > 64 or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name) or ".." in name:
        raise ScheduleError(f"{_quote(name)} is not a time zone name such as Europe/Berlin or UTC.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"{_quote(name)} is not a time zone name such as Europe/Berlin or UTC.") from exc


def _quote(text: str) -> str:
    shown = text if len(text) <= 60 else text[:60] + "…"
    return repr(shown)


def _from_cron(text: str) -> str | None:
    fields = text.split()
    if len(fields) != 5 or not _CRON_CHARS.match(text):
        return None
    cron = " ".join(fields)
    try:
        CronSim(cron, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    except CronSimError as exc:
        raise ScheduleError(f"cron {_quote(cron)} is not valid ({exc}). Cron has five fields: minute hour "
                            "day-of-month month day-of-week, e.g. \"0 9 * * MON\".") from None
    return cron


def _clock(text: str | None) -> tuple[int, int] | None:
    """"9", "9:30", "09:30", "9am", "6:30 pm", "noon", "midnight" → (hour, minute)."""
    if text is None:
        return (0, 0)
    text = text.replace(" ", "")
    if text in ("noon", "midnight"):
        return (12, 0) if text == "noon" else (0, 0)
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(am|pm)?", text)
    if match is None:
        return None
    hour, minute, half = int(match[1]), int(match[2] or 0), match[3]
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return hour, minute


def _days(text: str) -> str | None:
    """"monday", "mon, wed and fri", "mondays", "weekday(s)", "weekend(s)" → a cron day-of-week field."""
    text = text.strip()
    if text in ("weekday", "weekdays"):
        return "1-5"
    if text in ("weekend", "weekends"):
        return "0,6"
    numbers: list[int] = []
    for word in re.split(r"\s*(?:,|\band\b|&)\s*", text):
        word = word.strip().removesuffix("s") if word.strip() not in _DAYS else word.strip()
        day = _DAYS.get(word, _DAY_ALIASES.get(word))
        if day is None:
            return None
        if day not in numbers:
            numbers.append(day)
    return ",".join(str(d) for d in sorted(numbers)) if numbers else None


_WORD_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), kind) for p, kind in (
    (r"every (?P<n>\d{1,2}) ?(?:minutes|mins|min|m)", "minutes"),
    (r"(?:every hour|hourly)(?: at :?(?P<minute>\d{1,2})(?: past)?)?", "hourly"),
    (r"every (?P<n>\d{1,2}) ?(?:hours|hrs|h)", "hours"),
    (rf"(?:every day|everyday|daily|each day)(?: (?:at )?{_TIME})?", "daily"),
    (rf"(?:every |each |weekly on |on )?(?P<days>[a-z ,&]+?)(?: (?:at )?{_TIME})?", "weekly"),
    (rf"(?:every month|monthly)(?: on)?(?: the)? (?P<dom>\d{{1,2}})(?:st|nd|rd|th)?(?: (?:at )?{_TIME})?", "monthly"),
    (rf"(?:every month|monthly)(?: (?:at )?{_TIME})?", "monthly_first"),
))


def _from_words(text: str) -> str | None:
    for pattern, kind in _WORD_PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        cron = _build(kind, match)
        if cron is not None:
            return cron
    return None


def _build(kind: str, match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    if kind == "minutes":
        n = int(groups["n"])
        if not 1 <= n <= 59 or 60 % n:
            raise ScheduleError(f"Every {n} minutes does not divide the hour evenly; use one of 5, 10, 15, 20, "
                                "30 minutes, or cron.")
        return f"*/{n} * * * *"
    if kind == "hourly":
        minute = int(groups.get("minute") or 0)
        return f"{minute} * * * *" if minute <= 59 else None
    if kind == "hours":
        n = int(groups["n"])
        if not 1 <= n <= 23 or 24 % n:
            raise ScheduleError(f"Every {n} hours does not divide the day evenly; use 1, 2, 3, 4, 6, 8 or 12 "
                                "hours, or cron.")
        return f"0 */{n} * * *" if n > 1 else "0 * * * *"
    clock = _clock(groups.get("time"))
    if clock is None:
        return None
    hour, minute = clock
    if kind == "daily":
        return f"{minute} {hour} * * *"
    if kind == "weekly":
        days = _days(groups["days"])
        return f"{minute} {hour} * * {days}" if days is not None else None
    if kind == "monthly":
        dom = int(groups["dom"])
        return f"{minute} {hour} {dom} * *" if 1 <= dom <= 28 else _month_end(dom)
    return f"{minute} {hour} 1 * *"  # monthly_first


def _month_end(day: int) -> str | None:
    if day in (29, 30, 31):
        raise ScheduleError(f"Not every month has a day {day}; use 1-28, or cron with L (last day), "
                            "e.g. \"0 9 L * *\".")
    return None


def _check_interval(cron: str, min_minutes: int) -> None:
    """Refuse an expression with two runs closer than ``min_minutes`` (checked over its first 200 runs)."""
    if min_minutes <= 0:
        return
    runs = CronSim(cron, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    previous = next(runs)
    for _ in range(200):
        current = next(runs)
        if (current - previous) < dt.timedelta(minutes=min_minutes):
            raise ScheduleError(f"A schedule may run at most every {min_minutes} minutes ([schedules] "
                                f"min_interval_minutes); {_quote(cron)} runs more often.")
        previous = current

"""When schedules run: words and cron, hostile input, and next runs across daylight-saving changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from core.errors import ScheduleError
from core.schedules.run import late_label
from core.schedules.timing import next_due, parse_when, zone_named

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("when", "cron"), [
    ("every Monday at 9:00", "0 9 * * 1"),
    ("every monday 9:00", "0 9 * * 1"),
    ("Every MONDAY at 09:00", "0 9 * * 1"),
    ("mondays at 6:30 pm", "30 18 * * 1"),
    ("every mon, wed and fri at 9", "0 9 * * 1,3,5"),
    ("weekly on friday at 17:00", "0 17 * * 5"),
    ("every weekday at 8am", "0 8 * * 1-5"),
    ("every weekend at noon", "0 12 * * 0,6"),
    ("every hour", "0 * * * *"),
    ("hourly", "0 * * * *"),
    ("hourly at :15", "15 * * * *"),
    ("every 2 hours", "0 */2 * * *"),
    ("every 15 minutes", "*/15 * * * *"),
    ("daily at 18:30", "30 18 * * *"),
    ("every day at midnight", "0 0 * * *"),
    ("daily", "0 0 * * *"),
    ("monthly on the 1st at 9:00", "0 9 1 * *"),
    ("monthly at 9", "0 9 1 * *"),
    ("@daily", "0 0 * * *"),
    ("0 9 * * MON", "0 9 * * MON"),
    ("  0   9 * *   1-5 ", "0 9 * * 1-5"),
    ("0 9 L * *", "0 9 L * *"),
])
def test_words_and_cron_become_one_cron_expression(when: str, cron: str) -> None:
    cadence = parse_when(when)
    assert cadence.cron == cron
    assert cadence.description  # shown in lists and cards


def test_descriptions_read_as_words() -> None:
    assert parse_when("every Monday at 9:00").description == "At 09:00 on Monday"
    assert parse_when("daily at 18:30").description == "At 18:30 every day"


@pytest.mark.parametrize("when", [
    "", "   ", "\x00", "x" * 10_000, "every", "every monday at 25:00", "every monday at 13pm", "every 0 minutes",
    "every -5 minutes", "every 99999999999999999999 minutes", "every 7 minutes", "every 5 hours",
    "0 9 * * MON; DROP TABLE orders", "every monday at 9:00; DROP TABLE orders", "*/0 * * * *", "60 * * * *",
    "0 24 * * *", "0 9 * * 8", "0 9 31 2 *", "0 9 * * * *", "0 9 * *", "$(reboot)", "0 9 * * MON\n0 * * * *",
    "monthly on the 31st", "every blursday at 9", "every monday and drop table at 9", "'; SELECT 1; --",
])
def test_hostile_or_wrong_times_are_refused_with_a_message(when: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_when(when)
    message = refused.value.user_message
    assert 0 < len(message) < 400
    assert "DROP" not in message.upper() or "drop table" in when.lower()  # quoted, never executed or expanded
    assert "\x00" not in message and "\n0 * * * *" not in message


@pytest.mark.parametrize("when", ["* * * * *", "*/2 * * * *", "0,1 9 * * *", "every 5 minutes"])
def test_too_frequent_schedules_are_refused(when: str) -> None:
    with pytest.raises(ScheduleError, match="at most every 10 minutes"):
        parse_when(when, min_interval_minutes=10)


def _local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def _runs(cron: str, start: dt.datetime, count: int) -> list[str]:
    out, at = [], start
    for _ in range(count):
        at = next_due(cron, BERLIN, after=at)
        assert at.tzinfo is dt.UTC
        out.append(at.astimezone(BERLIN).isoformat())
    return out


def test_a_time_skipped_by_spring_forward_runs_once_right_after_the_jump() -> None:
    # 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST; 02:30 does not exist that day.
    assert _runs("30 2 * * *", _local(2026, 3, 27, 12), 3) == [
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_a_time_repeated_by_fall_back_runs_once_at_the_first() -> None:
    # 2026-10-25: clocks go back from 03:00 CEST to 02:00 CET; 02:30 happens twice that day.
    runs = _runs("30 2 * * *", _local(2026, 10, 23, 12), 3)
    assert runs == ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_every_hour_runs_every_real_hour_through_both_changes() -> None:
    fall = _runs("0 * * * *", _local(2026, 10, 25, 0, 30), 4)
    assert fall == ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
                    "2026-10-25T03:00:00+01:00"]
    spring = _runs("0 * * * *", _local(2026, 3, 29, 0, 30), 3)
    assert spring == ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"]


def test_monday_nine_stays_nine_local_across_the_change() -> None:
    runs = [dt.datetime.fromisoformat(r) for r in _runs("0 9 * * 1", _local(2026, 3, 20), 2)]
    assert [r.astimezone(dt.UTC).hour for r in runs] == [8, 7]  # 09:00 CET, then 09:00 CEST
    assert all(r.hour == 9 for r in runs)


@pytest.mark.parametrize("name", ["../../etc/passwd", "", "Nowhere/City", "UTC; DROP", "a" * 100, "/etc/localtime"])
def test_time_zone_names_are_checked(name: str) -> None:
    with pytest.raises(ScheduleError):
        zone_named(name)
    assert zone_named("Europe/Berlin").key == "Europe/Berlin"


def test_late_label_names_due_and_run_times_in_local_time() -> None:
    due = _local(2026, 3, 30, 9).astimezone(dt.UTC)
    assert late_label(due=due, ran=due + dt.timedelta(minutes=42), zone=BERLIN, restart=True) == \
        "(late: due 09:00, ran 09:42 after a restart)"
    assert late_label(due=due, ran=due + dt.timedelta(days=1), zone=BERLIN, restart=False) == \
        "(late: due Mon 2026-03-30 09:00, ran Tue 2026-03-31 09:00)"

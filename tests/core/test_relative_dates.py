"""Finding relative-date phrases in questions (pure); resolving them is tested against Postgres elsewhere."""

from __future__ import annotations

import pytest

from core.prompt.relative_dates import find_phrases


@pytest.mark.parametrize(
    ("question", "labels"),
    [
        ("How many orders were placed last month?", ["last month"]),
        ("Orders in the last 7 days", ["last 7 days"]),
        ("revenue over the past three weeks", ["last 3 weeks"]),
        ("signups this year so far", ["this year"]),
        ("Revenue YTD", ["this year"]),
        ("month-to-date revenue", ["this month"]),
        ("orders today vs yesterday", ["today", "yesterday"]),
        ("Compare this month with the same month last year", ["this month", "last year"]),
        ("tickets in the past week", ["past week"]),
        ("previous quarter's refunds", ["last quarter"]),
        ("last 12 months by month", ["last 12 months"]),
        ("the last 1 day", ["last 1 day"]),
        ("How many customers do we have?", []),
        ("the last order of customer 7", []),
        ("What's the year of the oldest order?", []),
    ],
)
def test_phrases_found_once_in_question_order(question: str, labels: list[str]) -> None:
    assert [p.label for p in find_phrases(question)] == labels


def test_calendar_and_rolling_ranges_have_the_documented_sql() -> None:
    last_month, last_7 = find_phrases("last month and the last 7 days")
    assert last_month.calendar and not last_7.calendar
    assert last_month.start_sql == "date_trunc('month', now()) - interval '1 month'"
    assert last_month.end_sql == "date_trunc('month', now())"
    assert (last_7.start_sql, last_7.end_sql) == ("now() - interval '7 days'", "now()")
    (quarter,) = find_phrases("this quarter")
    assert quarter.end_sql == "date_trunc('quarter', now()) + interval '3 months'"


def test_absurd_numbers_and_many_phrases_are_bounded() -> None:
    assert find_phrases("the last 0 days") == []
    assert find_phrases("the last 99999 days") == []  # more than 4 digits: not a date phrase
    many = "today yesterday this week last week this month last month this year last year"
    assert len(find_phrases(many)) == 6

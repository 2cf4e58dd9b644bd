"""Execution-accuracy comparison: the tolerances it allows and the differences it catches (pure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from bench.quality.baseline import extract_sql
from bench.quality.compare import matches, normalize_rows
from bench.quality.questions import load_questions, select


def rs(columns: list[str], rows: list[tuple[object, ...]], tz: str = "UTC"):  # type: ignore[no-untyped-def]
    return normalize_rows(rows, columns=columns, tz=tz)


def test_same_rows_in_another_order_match_unless_ordered() -> None:
    expected = rs(["name", "n"], [("a", 1), ("b", 2)])
    got = rs(["x", "y"], [("b", 2), ("a", 1)])
    assert matches(expected, got, ordered=False)
    assert not matches(expected, got, ordered=True)


def test_extra_columns_are_allowed_missing_ones_are_not() -> None:
    expected = rs(["name"], [("a",), ("b",)])
    assert matches(expected, rs(["id", "name"], [(1, "a"), (2, "b")]), ordered=False)
    assert not matches(rs(["name", "email"], [("a", "a@x"), ("b", "b@x")]), rs(["name"], [("a",), ("b",)]),
                       ordered=False)


def test_columns_are_matched_as_rows_not_one_by_one() -> None:
    expected = rs(["name", "n"], [("a", 1), ("b", 2)])
    swapped_pairs = rs(["name", "n"], [("a", 2), ("b", 1)])
    assert not matches(expected, swapped_pairs, ordered=False)


def test_numbers_int_decimal_float_and_rounding() -> None:
    assert matches(rs(["n"], [(3,)]), rs(["n"], [(Decimal("3.00"),)]), ordered=False)
    assert matches(rs(["pct"], [(Decimal("12.3456789"),)]), rs(["pct"], [(12.35,)]), ordered=False)
    assert matches(rs(["avg"], [(3.87654,)]), rs(["avg"], [(3.9,)]), ordered=False)
    assert not matches(rs(["avg"], [(3.6,)]), rs(["avg"], [(4,)]), ordered=False)  # no rounding to integers
    assert not matches(rs(["n"], [(30,)]), rs(["n"], [(31,)]), ordered=False)


def test_midnight_timestamptz_equals_the_date_in_the_database_time_zone() -> None:
    midnight_berlin = dt.datetime(2026, 4, 30, 22, 0, tzinfo=dt.UTC)  # 2026-05-01 00:00 in Berlin
    assert matches(rs(["m"], [(midnight_berlin,)], tz="Europe/Berlin"), rs(["m"], [(dt.date(2026, 5, 1),)]),
                   ordered=False)
    assert not matches(rs(["m"], [(midnight_berlin,)], tz="UTC"), rs(["m"], [(dt.date(2026, 5, 1),)]),
                       ordered=False)


def test_row_counts_and_empty_results() -> None:
    assert matches(rs(["a"], []), rs(["x", "y"], []), ordered=False)
    assert not matches(rs(["a"], [(1,)]), rs(["a"], [(1,), (1,)]), ordered=False)
    assert not matches(rs(["a"], [(None,)]), rs(["a"], [(0,)]), ordered=False)  # NULL is not zero


def test_sql_is_extracted_from_fences_or_prose() -> None:
    assert extract_sql("Here:\n```sql\nSELECT 1;\n```") == "SELECT 1"
    assert extract_sql("```\nWITH x AS (SELECT 1) SELECT * FROM x\n```") == "WITH x AS (SELECT 1) SELECT * FROM x"
    assert extract_sql("The query is SELECT count(*) FROM orders;") == "SELECT count(*) FROM orders"
    assert extract_sql("<think>SELECT wrong</think>```sql\nSELECT right\n```") == "SELECT right"
    assert extract_sql("I cannot answer that.") is None


def test_the_question_file_is_complete_and_selectable() -> None:
    questions = load_questions()
    assert len(questions) >= 40
    assert len({q.id for q in questions}) == len(questions)
    assert all(q.sql and q.question for q in questions)
    tags = {t for q in questions for t in q.tags}
    assert {"relative-date", "null-trap", "join", "aggregate"} <= tags
    assert [q.id for q in select(questions, only=["orders_last_month", "count_customers"])] == [
        "orders_last_month", "count_customers"]
    assert all("relative-date" in q.tags for q in select(questions, tags=["relative-date"]))
    assert len(select(questions, limit=3)) == 3

"""Query-shape hints: triggered by the wording that calls for an idiom, silent otherwise."""

from __future__ import annotations

import pytest

from core.db.fix_hints import near, retry_hint
from core.prompt.shape_hints import HEADER, hint_names, shape_hints


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Which suppliers have never delivered anything?", ("anti_join",)),
        ("Which projects haven't got a lead?", ("anti_join",)),
        ("Are there products nobody has ever ordered?", ("anti_join",)),
        ("Show every department together with its head count.", ("keep_all_rows",)),
        ("List all teams along with their captain.", ("keep_all_rows",)),
        ("Cumulative signups by week", ("running_total", "calendar_buckets")),
        ("Show revenue per month for 2025 and 2026", ("calendar_buckets",)),
        ("Month-over-month change in signups", ("calendar_buckets",)),
        ("Which users logged in more than 3 times?", ("per_group_then_filter",)),
        ("What share of invoices are overdue?", ("percentage",)),
        ("Show the 10 newest tickets", ("top_n",)),
        ("How many invoices were paid?", ()),
        ("Which orders took more than 2 days to ship?", ()),  # a duration, not a count per entity
        ("How many orders include at least one discounted item?", ()),  # existence, not a count per entity
        ("Are there invoices whose total doesn't match their lines?", ()),  # a comparison, not a missing row
    ],
)
def test_hints_follow_the_wording(question: str, expected: tuple[str, ...]) -> None:
    assert hint_names(question) == expected
    text = shape_hints(question)
    assert text.startswith(HEADER) if expected else text == ""


def test_near_quotes_where_postgres_pointed_on_one_line() -> None:
    sql = "SELECT id,\n       nope\nFROM orders WHERE status = 'x'"
    assert near(sql, sql.index("nope") + 1).startswith("SELECT id, nope FROM orders")
    assert near(sql, None) == "" and near(sql, 0) == "" and near(sql, len(sql) + 5) == ""
    long_sql = "SELECT " + ", ".join(f"c{i}" for i in range(50)) + " FROM t"
    snippet = near(long_sql, long_sql.index("c30") + 1)
    assert snippet.startswith("…") and snippet.endswith("…") and "c30" in snippet


def test_retry_hints_name_the_fix_for_common_planning_errors() -> None:
    grouping = 'column "o.created_at" must appear in the GROUP BY clause or be used in an aggregate function'
    assert "sum(count(*)) OVER" in retry_hint(grouping)
    assert "HAVING" in retry_hint("aggregate functions are not allowed in WHERE")
    assert "NULLIF" in retry_hint("division by zero")
    assert retry_hint("something Postgres rarely says") == ""

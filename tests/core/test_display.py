"""core.display: values as people read them (pure logic, no services), and what a chat message keeps."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

from core import Reply, ReplyKind
from core.display import NULL_SHOWN, context_line, display_table, format_column, format_value
from core.messages import interval_text, rows_to_table

PARIS = "Europe/Paris"


def col(values: list[object], kind: str, name: str = "v", zone: str | None = None) -> list[str]:
    """Format raw Postgres values the way a result does: to_cell first, then the display formatter."""
    from core.display import zone_of

    table = rows_to_table([name], [(v,) for v in values], truncated=False, row_cap=None, types=[kind])
    return format_column([r[0] for r in table.rows], kind=table.kinds[0], name=name, tz=zone_of(zone)[0])


def test_numbers_get_separators_and_sensible_decimals() -> None:
    assert col([1234567, 10, None], "int8") == ["1,234,567", "10", NULL_SHOWN]
    # numeric keeps its scale up to 4 places (money), longer ones are rounded to 2
    assert col([decimal.Decimal("98765432.10"), decimal.Decimal("5.5")], "numeric") == ["98,765,432.10", "5.50"]
    assert col([decimal.Decimal("48.3333333333333333")], "numeric") == ["48.33"]
    assert col([decimal.Decimal("0.1235")], "numeric") == ["0.1235"]
    # a tiny value is never rounded to a misleading 0.00
    assert col([decimal.Decimal("0.000012345678"), decimal.Decimal("3.14159265")], "numeric") == ["0.00001235", "3.14"]
    assert col([0.1 + 0.2, 1.5], "float8") == ["0.30", "1.50"]  # float noise gone, one scale per column
    assert col([float("nan"), float("inf"), float("-inf")], "float8") == ["NaN", "Infinity", "-Infinity"]
    assert col([decimal.Decimal("NaN")], "numeric") == ["NaN"]
    assert col([-1234.5], "float8") == ["-1,234.5"]


def test_ids_years_and_codes_are_labels_not_amounts() -> None:
    assert col([2024], "int4", name="year") == ["2024"]
    assert col([123456], "int8", name="order_id") == ["123456"]
    assert col([75001], "int4", name="zip") == ["75001"]
    assert col([123456], "int8", name="orders") == ["123,456"]


def test_null_is_distinct_from_the_text_null() -> None:
    assert col(["NULL", None, "", "—x"], "text") == ["NULL", NULL_SHOWN, "", "—x"]
    assert NULL_SHOWN == "—"


def test_times_are_shown_in_the_database_time_zone_without_microseconds() -> None:
    moment = dt.datetime(2024, 5, 3, 14, 7, 9, 123456, tzinfo=dt.UTC)
    assert col([moment, None], "timestamptz", zone=PARIS) == ["2024-05-03 16:07:09", NULL_SHOWN]
    assert col([moment], "timestamptz", zone="Etc/UTC") == ["2024-05-03 14:07:09"]
    # a POSIX-style or unknown zone falls back to UTC (what asyncpg delivers) rather than guessing
    assert col([moment], "timestamptz", zone="<+03>-03") == ["2024-05-03 14:07:09"]
    # timestamp without time zone is shown as stored, never shifted
    assert col([dt.datetime(2024, 5, 3, 14, 7, 9, 5)], "timestamp", zone=PARIS) == ["2024-05-03 14:07:09"]
    # a month bucket (midnight in the zone everywhere) reads as a date
    months = [dt.datetime(2024, 4, 30, 22, tzinfo=dt.UTC), dt.datetime(2024, 5, 31, 22, tzinfo=dt.UTC)]
    assert col(months, "timestamptz", zone=PARIS) == ["2024-05-01", "2024-06-01"]
    assert col([dt.datetime.max, dt.datetime.min], "timestamptz", zone=PARIS) == ["infinity", "-infinity"]
    assert col([dt.date(2024, 5, 3)], "date") == ["2024-05-03"]
    assert col([dt.time(14, 7, 9, 500)], "time") == ["14:07:09"]


def test_other_types_read_plainly() -> None:
    assert col([True, False], "bool") == ["true", "false"]
    assert col([dt.timedelta(days=3, hours=4, minutes=5, seconds=6, microseconds=500_000)], "interval") == [
        "3 days 04:05:06"]
    assert interval_text(dt.timedelta(days=3, seconds=14706.5)) == "3 days 04:05:06.5"  # the CSV keeps it exact
    assert interval_text(dt.timedelta(hours=-1)) == "-01:00:00"
    assert col(['{"a": 1, "b": [1, 2]}'], "jsonb") == ['{"a":1,"b":[1,2]}']
    assert col([[1, 2, 3]], "int4[]") == ["[1,2,3]"]
    ident = uuid.UUID("0ea34841-94e3-45c6-b903-e19cb9429248")
    assert col([ident], "uuid") == [str(ident)]
    assert col([b"\x01\x02"], "bytea") == ["\\x0102"]
    assert col([bytes(range(256)) * 40], "bytea") == ["\\x0001020304050607… (10,240 bytes)"]
    assert format_value("$1,234.50", kind="money") == "$1,234.50"


def _table(rows: int, columns: int, *, truncated: bool = False) -> Reply:
    names = [f"c{i}" for i in range(columns)]
    table = rows_to_table(names, [tuple(r * 1000 + c for c in range(columns)) for r in range(rows)],
                          truncated=truncated, row_cap=rows if truncated else None, duration_ms=48.2,
                          time_zone=PARIS)
    return Reply(kind=ReplyKind.ANSWER, text="x", table=table, database="shop", role="analyst")


def test_long_and_wide_results_are_shortened_with_a_note() -> None:
    reply = _table(500, 16, truncated=True)
    assert reply.table is not None
    shown = display_table(reply.table)
    assert len(shown.rows) == 15 and len(shown.columns) == 6 and all(shown.right)
    assert shown.note() == "showing 15 of 500+ · 10 more columns in the CSV"
    assert context_line(reply, shown) == "shop · role analyst · 500+ rows · 48 ms"  # no times: no zone
    narrow = display_table(reply.table, width=30)
    assert narrow.columns == ("c0", "c1", "c2") and narrow.hidden_columns == 13  # "14,000 | …" is 6 wide


def test_a_column_too_wide_for_the_grid_is_cut_to_what_is_left() -> None:
    table = rows_to_table(["id", "note"], [(1, "word " * 30)], truncated=False, row_cap=None)
    two = rows_to_table(["id", "note"], [(1, "word " * 30), (2, "short")], truncated=False, row_cap=None)
    shown = display_table(two, width=40)
    assert shown.columns == ("id", "note") and len(shown.rows[0][1]) == 35 and shown.rows[0][1].endswith("…")
    assert shown.cells_cut and not shown.complete and shown.note() == "long values shortened in the CSV"
    assert display_table(table).one_row  # a single row is never cut to a grid: it becomes fields


def test_one_row_becomes_fields_and_times_name_their_zone() -> None:
    table = rows_to_table(["orders", "last_order"], [(1234, dt.datetime(2024, 5, 3, 14, 7, tzinfo=dt.UTC))],
                          truncated=False, row_cap=500, time_zone=PARIS, duration_ms=1500)
    shown = display_table(table)
    assert shown.one_row and shown.rows == (("1,234", "2024-05-03 16:07:00"),) and shown.complete
    reply = Reply(kind=ReplyKind.RESULT, text="", table=table, database="shop")
    assert context_line(reply, shown) == "shop · 1 row · 1.5 s · times in Europe/Paris"


def test_hostile_cells_stay_one_line_and_bounded() -> None:
    evil = "a\nb\r\nc\tD" + "x" * 500
    shown = display_table(rows_to_table(["v"], [(evil,), ("ok",)], truncated=False, row_cap=None))
    assert "\n" not in shown.rows[0][0] and len(shown.rows[0][0]) == 60 and shown.cells_cut

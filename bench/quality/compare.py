"""Execution accuracy: does the predicted query return the reference query's result?

The usual definition, with the tolerances that keep it about answers rather than formatting:
* rows are compared as a multiset unless the question asks for an order (``ordered``);
* extra columns are allowed: every reference column must match a distinct predicted column, so
  ``SELECT id, name`` answers "which customers …" whose reference selects ``name``;
* numbers compare with a relative tolerance, and a value rounded to 1-4 decimals matches the exact one
  (``12.35`` for ``12.3456``); integers and decimals of the same value are equal;
* a ``timestamptz`` at midnight in the database's time zone equals that ``date``;
* column names never matter.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Value = None | bool | float | str
Row = tuple[Value, ...]

MAX_GREEDY_ROWS = 3000
MAX_MAPPINGS = 2000


@dataclass(frozen=True, slots=True)
class ResultSet:
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


def normalize_rows(rows: Sequence[Sequence[object]], *, columns: Sequence[str], tz: str) -> ResultSet:
    zone = _zone(tz)
    return ResultSet(tuple(columns), tuple(tuple(normalize(v, zone) for v in row) for row in rows))


def normalize(value: object, zone: dt.tzinfo) -> Value:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(zone).replace(tzinfo=None)
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def same_value(a: Value, b: Value) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9):
            return True
        return _rounded_match(a, b) or _rounded_match(b, a)
    if isinstance(a, str) and isinstance(b, str):
        return a.rstrip() == b.rstrip()
    return a == b


def _rounded_match(exact: float, shown: float) -> bool:
    """``shown`` is ``exact`` rounded to 1-4 decimals (never to an integer: 4 is not 3.6 stars)."""
    if float(shown).is_integer() and not float(exact).is_integer():
        return False
    return any(round(shown, k) == shown and abs(exact - shown) <= 0.5 * 10**-k + 1e-9 for k in range(1, 5))


def _sort_key(value: Value) -> tuple[int, float | str]:
    if value is None:
        return (0, 0.0)
    if isinstance(value, bool):
        return (1, float(value))
    if isinstance(value, float):
        return (2, value)
    return (3, value)


def _row_key(row: Row) -> tuple[tuple[int, float | str], ...]:
    return tuple(_sort_key(v) for v in row)


def same_rows(expected: Sequence[Row], got: Sequence[Row], *, ordered: bool) -> bool:
    if len(expected) != len(got):
        return False
    if ordered:
        return all(_same_row(a, b) for a, b in zip(expected, got, strict=True))
    a_sorted, b_sorted = sorted(expected, key=_row_key), sorted(got, key=_row_key)
    if all(_same_row(a, b) for a, b in zip(a_sorted, b_sorted, strict=True)):
        return True
    if len(expected) > MAX_GREEDY_ROWS:
        return False
    unused = list(got)  # rounding can reorder near-equal rows: match greedily instead
    for row in expected:
        for index, candidate in enumerate(unused):
            if _same_row(row, candidate):
                del unused[index]
                break
        else:
            return False
    return True


def _same_row(a: Row, b: Row) -> bool:
    return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))


def matches(expected: ResultSet, got: ResultSet, *, ordered: bool) -> bool:
    """Whether ``got`` answers like ``expected`` (see the module docstring)."""
    if len(expected.rows) != len(got.rows):
        return False
    if not expected.rows:
        return True  # both empty: the columns cannot be compared and do not matter
    width = len(expected.columns)
    if len(got.columns) < width:
        return False
    columns_of = list(zip(*got.rows, strict=True))
    expected_columns = list(zip(*expected.rows, strict=True))
    candidates = [
        [j for j, col in enumerate(columns_of) if _same_column(expected_columns[i], col)] for i in range(width)
    ]
    if any(not c for c in candidates):
        return False
    for mapping in itertools.islice(_injective(candidates), MAX_MAPPINGS):
        projected = [tuple(row[j] for j in mapping) for row in got.rows]
        if same_rows(expected.rows, projected, ordered=ordered):
            return True
    return False


def _same_column(a: Sequence[Value], b: Sequence[Value]) -> bool:
    a_sorted, b_sorted = sorted(a, key=_sort_key), sorted(b, key=_sort_key)
    if all(same_value(x, y) for x, y in zip(a_sorted, b_sorted, strict=True)):
        return True
    numeric = all(isinstance(v, float) for v in (*a_sorted[:1], *b_sorted[:1]))
    return numeric and len(a) <= 500 and same_rows([(x,) for x in a], [(y,) for y in b], ordered=False)


def _injective(candidates: list[list[int]], used: tuple[int, ...] = ()) -> Iterator[tuple[int, ...]]:
    """Every assignment of distinct predicted columns to the reference columns, in candidate order."""
    if len(used) == len(candidates):
        yield used
        return
    for j in candidates[len(used)]:
        if j not in used:
            yield from _injective(candidates, (*used, j))

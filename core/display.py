"""Values and tables for people reading on a phone; the raw values stay in the result, JSON and CSV.

One formatter for every adapter (Slack, Discord, terminal), so they show the same thing:

* numbers with thousands separators, right-aligned; decimals keep their scale up to 4 places, longer
  ones (``avg()``, float noise) are rounded to 2 (or to 4 significant digits when that would show 0);
  no separators in columns that hold ids, years or codes (``order_id``, ``year``, ``zip``);
* ``timestamptz`` in the database session's time zone (named once, in the context line), without
  microseconds; a time column whose values are all midnight shows dates; dates plain;
* NULL as ``—`` (:data:`NULL_SHOWN`), so it never looks like the text 'NULL'; ``true``/``false``;
  intervals as Postgres prints them, without fractions of a second; JSON compact; bytea summarised;
* at most :data:`CHAT_ROWS` rows and :data:`CHAT_COLUMNS` columns (and a width budget for monospace
  grids), with a note of what was left out; a one-row result becomes key: value fields.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.column_kinds import (
    ARRAY,
    BYTEA,
    FLOAT,
    INT,
    INTERVAL,
    JSON,
    NUMERIC,
    RIGHT_ALIGNED,
    TEXT,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    TIMETZ,
)
from core.messages import Cell, Reply, ResultTable

NULL_SHOWN = "—"
CHAT_ROWS = 15
CHAT_COLUMNS = 6
ONE_ROW_FIELDS = 20  # a single row reads as "key: value" lines; more columns than this go to the CSV
MAX_CELL = 60
KEEP_SCALE = 4  # decimals with at most this many places are shown as stored (money: 98,765,432.10)
ROUND_TO = 2
SIGNIFICANT = 4

# Integer-like columns people read as labels, not amounts: no thousands separators (2024, not 2,024).
_LABEL_NAME = re.compile(r"(^|_)(id|year|yr|zip|zipcode|postcode|postal_code|code|pin|extract|date_part)$|^id_")
_BYTEA_SIZE = re.compile(r"… \(([\d,]+) bytes\)$")


@dataclass(frozen=True, slots=True)
class DisplayTable:
    """What a chat message shows of a result: formatted text cells, alignment, and what was left out."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: tuple[bool, ...]  # right-align this column (numbers, intervals)
    total_rows: int  # rows in the result (pgbot fetched); ``more_exist``: the row cap cut the rest
    more_exist: bool
    hidden_columns: int
    cells_cut: bool  # a value was shortened (long text, line breaks): the CSV has it whole
    zone: str | None  # the time zone times are shown in, when the shown columns hold any
    one_row: bool  # a single row, shown as key: value fields

    @property
    def hidden_rows(self) -> int:
        return self.total_rows - len(self.rows)

    @property
    def complete(self) -> bool:
        """Everything pgbot fetched is visible as it is (else the adapter attaches the CSV)."""
        return not self.hidden_rows and not self.hidden_columns and not self.cells_cut

    def rows_text(self) -> str:
        """``3 rows``, ``500+ rows`` (the cap cut the result)."""
        return rows_text(self.total_rows, more_exist=self.more_exist)

    def note(self, *, where: str = "in the CSV") -> str:
        """What is not shown, e.g. ``showing 15 of 500+ · 10 more columns in the CSV``; '' when complete."""
        parts = []
        if self.hidden_rows or self.more_exist:
            total = f"{self.total_rows:,}" + ("+" if self.more_exist else "")
            parts.append(f"showing {len(self.rows):,} of {total}")
        if self.hidden_columns:
            parts.append(f"{self.hidden_columns} more column{'s' if self.hidden_columns != 1 else ''}")
        elif self.cells_cut:
            parts.append("long values shortened")
        if not parts:
            return ""
        return " · ".join(parts) + (f" {where}" if where and not self.complete else "")


def rows_text(count: int, *, more_exist: bool = False) -> str:
    return f"{count:,}{'+' if more_exist else ''} row{'s' if count != 1 or more_exist else ''}"


def duration_text(ms: float) -> str:
    """``12 ms``, ``1.4 s``, ``2 min 5 s``."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    return f"{minutes} min {seconds} s"


def utc_text(stamp: float) -> str:
    """A moment (epoch seconds) as ``2026-03-30 09:00:00 UTC``: when a change expired, was decided or undone."""
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def zone_of(name: str | None) -> tuple[dt.tzinfo, str]:
    """The session's TimeZone as a tzinfo and the name to show; unknown or POSIX-style zones fall back to UTC
    (asyncpg hands timestamptz over in UTC, so UTC is always right, just less local)."""
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return dt.UTC, "UTC"


def display_table(
    table: ResultTable, *, max_rows: int = CHAT_ROWS, max_columns: int = CHAT_COLUMNS, width: int | None = None,
    max_cell: int = MAX_CELL, one_row_fields: int = ONE_ROW_FIELDS,
) -> DisplayTable:
    """The part of ``table`` a chat message shows, formatted. ``width``: a character budget for a monospace
    grid (columns are kept from the left while they fit; always at least one)."""
    one_row = table.row_count == 1 and not table.truncated
    tz, zone_name = zone_of(table.time_zone)
    kinds = table.kinds if len(table.kinds) == len(table.columns) else (TEXT,) * len(table.columns)
    rows = table.rows[:1] if one_row else table.rows[:max_rows]
    formatted: list[list[str]] = []
    cut_any = False
    for index, (name, kind) in enumerate(zip(table.columns, kinds, strict=True)):
        texts = format_column([row[index] for row in rows], kind=kind, name=name, tz=tz)
        shown = []
        for text in texts:
            flat = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎").replace("\t", " ")
            if flat != text or len(flat) > max_cell:
                cut_any = True
            shown.append(flat if len(flat) <= max_cell else flat[: max_cell - 1] + "…")
        formatted.append(shown)
    limit = one_row_fields if one_row else max_columns
    count = min(len(table.columns), limit)
    names = list(table.columns)
    if width is not None and not one_row:
        count, room = _columns_within(table.columns, formatted, count=count, width=width)
        if room is not None:  # the last kept column is cut to the width left, not dropped
            last = count - 1
            names[last] = shorten(names[last], room)
            formatted[last] = [shorten(text, room) for text in formatted[last]]
            cut_any = True
    kept_kinds = kinds[:count]
    zone = zone_name if any(k == TIMESTAMPTZ for k in kept_kinds) else None
    return DisplayTable(
        columns=tuple(names[:count]),
        rows=tuple(tuple(column[r] for column in formatted[:count]) for r in range(len(rows))),
        right=tuple(k in RIGHT_ALIGNED for k in kept_kinds),
        total_rows=table.row_count,
        more_exist=table.truncated,
        hidden_columns=len(table.columns) - count,
        cells_cut=cut_any,
        zone=zone,
        one_row=one_row,
    )


MIN_CUT_COLUMN = 12  # a column narrower than this once cut tells people nothing: leave it to the CSV


def _columns_within(
    names: Sequence[str], formatted: list[list[str]], *, count: int, width: int
) -> tuple[int, int | None]:
    """How many leading columns fit in ``width`` characters, and the width to cut the last one to (None: it
    fits whole). A column that does not fit is cut when enough room is left for it, else left out."""
    used = 0
    for index in range(count):
        column = max([len(names[index]), *(len(text) for text in formatted[index])])
        gap = 3 if index else 0  # " | " between columns
        if used + gap + column > width:
            room = width - used - gap
            if room >= MIN_CUT_COLUMN or index == 0:
                return index + 1, max(room, MIN_CUT_COLUMN)
            return index, None
        used += gap + column
    return count, None


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def context_line(reply: Reply, shown: DisplayTable | None = None) -> str:
    """One line of facts under an answer: ``shop · role analyst · 500+ rows · 48 ms · times in Europe/Paris``."""
    parts = []
    if reply.database:
        parts.append(reply.database)
    if reply.role:
        parts.append(f"role {reply.role}")
    table = reply.table
    if table is not None and table.columns:
        parts.append(rows_text(table.row_count, more_exist=table.truncated))
        if table.duration_ms is not None:
            parts.append(duration_text(table.duration_ms))
    if shown is not None and shown.zone:
        parts.append(f"times in {shown.zone}")
    return " · ".join(parts)


# -- one column at a time: decimals and date-only decisions need the whole column --------------------------


def format_column(values: Sequence[Cell], *, kind: str, name: str = "", tz: dt.tzinfo = dt.UTC) -> list[str]:
    """Every value of one column as people read it; NULL is :data:`NULL_SHOWN`."""
    if kind in (INT, NUMERIC, FLOAT):
        texts = _numbers(values, group=not _LABEL_NAME.search(name.lower()))
    elif kind in (TIMESTAMPTZ, TIMESTAMP):
        texts = _timestamps(values, tz=tz if kind == TIMESTAMPTZ else None)
    else:
        texts = [_value(v, kind) for v in values]
    return [NULL_SHOWN if v is None else t for v, t in zip(values, texts, strict=True)]


def format_value(value: Cell, *, kind: str, name: str = "", tz: dt.tzinfo = dt.UTC) -> str:
    return format_column([value], kind=kind, name=name, tz=tz)[0]


def _value(value: Cell, kind: str) -> str:
    if value is None:
        return NULL_SHOWN
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if kind in (TIME, TIMETZ):
        return _drop_fraction(text)
    if kind == INTERVAL:
        return re.sub(r"(\d{2}:\d{2}:\d{2})\.\d+", r"\1", text)
    if kind in (JSON, ARRAY):
        return _compact_json(text)
    if kind == BYTEA:
        return _bytea(text)
    return text


def _drop_fraction(text: str) -> str:
    return re.sub(r"^(\d{2}:\d{2}:\d{2})\.\d+", r"\1", text)


def _compact_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return text


def _bytea(text: str) -> str:
    """``\\x89504e47… (1,234 bytes)``: the first bytes identify a format; the size is what matters."""
    if not text.startswith("\\x"):
        return text
    match = _BYTEA_SIZE.search(text)
    size = int(match.group(1).replace(",", "")) if match else (len(text) - 2) // 2
    if size <= 8 and not match:
        return text
    return f"{text[:18]}… ({size:,} bytes)"


def _numbers(values: Sequence[Cell], *, group: bool) -> list[str]:
    parsed: list[decimal.Decimal | None] = []
    for value in values:
        parsed.append(_as_decimal(value))
    finite = [d for d in parsed if d is not None and d.is_finite()]
    scale = max((max(0, -int(d.as_tuple().exponent)) for d in finite), default=0)
    places = scale if scale <= KEEP_SCALE else ROUND_TO
    out = []
    for value, number in zip(values, parsed, strict=True):
        if number is None:
            out.append(NULL_SHOWN if value is None else str(value))
        else:
            out.append(_number(number, places=places, group=group))
    return out


def _as_decimal(value: Cell) -> decimal.Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return decimal.Decimal(value)
    if isinstance(value, float):
        return decimal.Decimal(repr(value))  # repr is the shortest exact round-trip: 0.1 stays 0.1
    try:
        return decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        return None


def _number(number: decimal.Decimal, *, places: int, group: bool) -> str:
    if number.is_nan():
        return "NaN"
    if number.is_infinite():
        return "-Infinity" if number < 0 else "Infinity"
    sep = "," if group else ""
    rounded = number.quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP)
    if rounded.is_zero() and not number.is_zero():
        return format(number, f".{SIGNIFICANT}g")  # 0.000123 stays 0.000123, not 0.00
    return format(rounded, f"{sep}.{places}f")


def _timestamps(values: Sequence[Cell], *, tz: dt.tzinfo | None) -> list[str]:
    """ISO cells → ``2024-05-03 16:07:09`` in ``tz`` (None: as stored, no zone); all-midnight → dates."""
    moments: list[dt.datetime | None] = []
    for value in values:
        moment = _parse_moment(value)
        if moment is not None and tz is not None and moment.tzinfo is not None:
            with contextlib.suppress(OverflowError, ValueError):  # near the ends of the calendar: stays UTC
                moment = moment.astimezone(tz)
        moments.append(moment)
    dates_only = all(m.time() == dt.time(0) for m in moments if m is not None) and any(moments)
    out = []
    for value, moment in zip(values, moments, strict=True):
        if moment is None:
            out.append(NULL_SHOWN if value is None else str(value))
        elif moment.year == dt.MAXYEAR and moment.month == 12 and moment.day == 31:
            out.append("infinity")  # asyncpg maps 'infinity' to datetime.max
        elif moment.year == dt.MINYEAR and moment.month == 1 and moment.day == 1:
            out.append("-infinity")
        else:
            out.append(moment.strftime("%Y-%m-%d") if dates_only else moment.strftime("%Y-%m-%d %H:%M:%S"))
    return out


def _parse_moment(value: Cell) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


"""A result's shape → the chart's kind and data. Pure functions (no matplotlib), so each rule is tested alone.

The kind, unless asked for: a time column → line (several numbers, or a time, a category and a number →
one line each); a category and a number → bar; two numbers → scatter. A kind asked for that does not fit
the result is replaced by the one that does, with a note. What does not fit on a chart is never dropped
silently: every cut (rows at the cap, bars beyond ``max_categories``, points beyond ``max_points``, values
that are NULL, NaN or Infinity) adds a note that the reply shows.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.charts.labels import LABEL_CHARS, axis_label, clean, title_from, unit_of
from core.errors import ChartError
from core.messages import Cell, ResultTable

ChartKind = Literal["line", "bar", "scatter"]
KINDS: tuple[ChartKind, ...] = ("line", "bar", "scatter")
MAX_ABS = 1e100  # larger magnitudes overflow the axis arithmetic: treated like Infinity
MAX_TIME_BARS = 200  # bars over time or numbers beyond this are averaged in buckets (a bar needs a pixel or two)
NULL_LABEL = "(null)"
_EPOCH = dt.datetime(1970, 1, 1)
OTHER = "Other"

_NUMBER = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$")
_NON_FINITE = {"nan", "infinity", "-infinity", "+infinity", "inf", "-inf"}
_TIME = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_ORDINAL_NAMES = {"year", "yr", "quarter", "month", "week", "isoweek", "day", "dow", "hour", "minute", "period"}
# A measure whose values must not be added up (an average of averages is not "Other"): combined by mean instead.
_NOT_ADDITIVE = re.compile(r"avg|mean|median|average|rate|ratio|pct|percent|share|min|max|score|price|per_",
                           re.IGNORECASE)


class Role(enum.Enum):
    NUMBER = "number"
    TIME = "time"
    ORDINAL = "ordinal"  # whole numbers that count time (year, month, week …): an x axis, not a measure
    TEXT = "text"  # categories (also ids and booleans)
    EMPTY = "empty"  # only NULLs


@dataclass(frozen=True, slots=True)
class Column:
    index: int
    name: str
    role: Role


XValue = float | dt.datetime | str


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[float, ...]  # one per x; NaN where there is no value
    additive: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the renderer needs; ``x_role`` TEXT means evenly spaced labelled positions."""

    kind: ChartKind
    title: str
    x_label: str
    y_label: str
    x_role: Role
    x: tuple[XValue, ...]
    series: tuple[Series, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    max_categories: int = 20
    max_points: int = 2000
    max_series: int = 8


# --- cells -------------------------------------------------------------------------------------------------

def to_number(cell: Cell) -> float | None:
    """A cell as a float (NaN and ±Infinity included: the caller drops them), or None when it is no number."""
    if cell is None or isinstance(cell, bool):
        return None
    if isinstance(cell, int | float):
        try:
            return float(cell)
        except OverflowError:
            return math.inf
    if _NUMBER.match(cell) or cell.strip().lower() in _NON_FINITE:
        return float(cell)  # float("1e999") is inf, never an error
    return None


def to_time(cell: Cell) -> dt.datetime | None:
    """An ISO date or timestamp (as results carry them) as a naive datetime in the time zone it was shown in."""
    if not isinstance(cell, str) or not _TIME.match(cell):
        return None
    month = _MONTH.match(cell)
    try:
        value = dt.datetime(int(month[1]), int(month[2]), 1) if month else dt.datetime.fromisoformat(cell)
    except ValueError:
        return None
    return value.replace(tzinfo=None)  # keep the wall clock Postgres printed, not UTC


def _drawable(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and abs(value) <= MAX_ABS


def _drawn_value(value: float | None) -> float:
    """The value to draw, or NaN (a gap) for NULL, NaN, ±Infinity and magnitudes beyond :data:`MAX_ABS`."""
    return value if value is not None and _drawable(value) else math.nan


def _is_time_text(cell: Cell) -> bool:
    return isinstance(cell, str) and cell.strip().lower() in {"infinity", "-infinity"}


def infer_columns(table: ResultTable) -> list[Column]:
    """Each column's role, from every value it holds (a column is a number only if all its values are)."""
    columns = []
    for index, name in enumerate(table.columns):
        values = [row[index] for row in table.rows if index < len(row) and row[index] is not None]
        columns.append(Column(index, name, _role(name, values)))
    return columns


def _role(name: str, values: Sequence[Cell]) -> Role:
    if not values:
        return Role.EMPTY
    if all(to_number(v) is not None for v in values):
        tokens = {t for t in re.split(r"[^a-z]+", name.lower()) if t}
        if name.lower() == "id" or name.lower().endswith("_id"):
            return Role.TEXT  # an identifier labels a row; it is not a quantity
        numbers = [n for n in (to_number(v) for v in values) if n is not None and math.isfinite(n)]
        if tokens & _ORDINAL_NAMES and all(n.is_integer() for n in numbers):
            return Role.ORDINAL
        return Role.NUMBER
    if all(to_time(v) is not None or _is_time_text(v) for v in values) and any(to_time(v) for v in values):
        return Role.TIME
    return Role.TEXT


# --- which kind, which columns -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Choice:
    kind: ChartKind
    x: Column
    ys: tuple[Column, ...]
    group: Column | None = None  # long format: one series per value of this column
    note: str | None = None


def choose(columns: Sequence[Column], *, rows: int, requested: ChartKind | None = None) -> Choice:
    """The kind and the columns to draw; a requested kind that does not fit falls back with a note."""
    if rows < 2:
        raise ChartError(f"The result has {'one row' if rows == 1 else 'no rows'}: a chart needs at least two rows "
                         "to compare.")
    numbers = [c for c in columns if c.role is Role.NUMBER]
    if not numbers:
        names = ", ".join(clean(c.name, limit=40) for c in columns[:6])
        raise ChartError(f"The result has no numeric column to draw (columns: {names}). A chart needs a number, "
                         "such as a count or a sum, and something to draw it against.")
    auto = _auto(columns, numbers)
    if requested is None or requested == auto.kind:
        return auto
    fitted = _as_kind(requested, columns, numbers)
    if fitted is not None:
        return fitted
    why = {"scatter": "a scatter chart needs two numbers, or a time and a number"}.get(requested, "")
    return Choice(auto.kind, auto.x, auto.ys, auto.group,
                  note=f"Drawn as a {auto.kind} chart instead of a {requested} chart: {why}.")


def _time_like(columns: Sequence[Column]) -> Column | None:
    return next((c for c in columns if c.role is Role.TIME), None) or \
        next((c for c in columns if c.role is Role.ORDINAL), None)


def _auto(columns: Sequence[Column], numbers: list[Column]) -> Choice:
    texts = [c for c in columns if c.role is Role.TEXT]
    time = _time_like(columns)
    if time is not None:
        if texts and len(numbers) == 1:
            return Choice("line", time, (numbers[0],), group=texts[0])
        return Choice("line", time, tuple(numbers))
    if texts:
        return Choice("bar", texts[0], tuple(numbers))
    if len(numbers) >= 2:
        return Choice("scatter", numbers[0], (numbers[1],))
    raise ChartError(f"The result has one number ({clean(numbers[0].name, limit=40)}) and nothing to draw it "
                     "against: add a time, a category or another number to the query.")


def _as_kind(kind: ChartKind, columns: Sequence[Column], numbers: list[Column]) -> Choice | None:
    texts = [c for c in columns if c.role is Role.TEXT]
    time = _time_like(columns)
    if kind == "scatter":
        if time is not None:
            return Choice("scatter", time, (numbers[0],))
        return Choice("scatter", numbers[0], (numbers[1],)) if len(numbers) >= 2 else None
    if time is not None:
        group = texts[0] if texts and len(numbers) == 1 else None
        return Choice(kind, time, tuple(numbers), group=group)
    if texts:
        return Choice(kind, texts[0], tuple(numbers))
    if len(numbers) >= 2:
        return Choice(kind, numbers[0], tuple(numbers[1:]))
    return None


# --- the data ------------------------------------------------------------------------------------------------

def additive(name: str) -> bool:
    """Whether values of this measure may be summed (counts, totals) rather than averaged (rates, prices)."""
    return not _NOT_ADDITIVE.search(name)


def plan_chart(
    table: ResultTable, *, kind: ChartKind | None = None, title: str = "", question: str = "",
    limits: Limits | None = None,
) -> Plan:
    """The chart for ``table``: kind, labels, the data to draw and a note for everything cut or changed."""
    limits = limits or Limits()
    columns = infer_columns(table)
    choice = choose(columns, rows=table.row_count, requested=kind)
    notes: list[str] = []
    if table.truncated:
        cap = table.row_cap or table.row_count
        notes.append(f"The query returned more than {cap:,} rows; the chart shows the first {cap:,}. "
                     "Group or filter in SQL to chart every row.")
    if choice.note:
        notes.append(choice.note)
    ys = choice.ys
    if choice.kind == "scatter":
        ys = ys[:1]
    elif len(ys) > limits.max_series:
        left = ", ".join(clean(c.name, limit=30) for c in ys[limits.max_series:])
        notes.append(f"{len(ys) - limits.max_series} more numeric column(s) not drawn: {left}.")
        ys = ys[: limits.max_series]
    data = _extract(table, choice, ys)
    if data.dropped:
        notes.append(f"{data.dropped:,} of {table.row_count:,} rows have an empty or non-numeric value (NULL, NaN, "
                     "Infinity or beyond ±1e100) that is not drawn.")
    x_role = choice.x.role if choice.x.role in (Role.TIME, Role.NUMBER, Role.ORDINAL) else Role.TEXT
    if choice.group is not None:
        x_values, series = _pivot(data, ys[0], limits=limits, notes=notes, group_name=choice.group.name)
    elif choice.kind == "scatter":
        x_values = data.x
        series = [Series(axis_label(c.name), tuple(v), additive(c.name)) for c, v in zip(ys, data.ys, strict=True)]
    else:
        x_values, series = _merge_repeats(data, ys, notes, x_name=choice.x.name)
    if choice.kind == "scatter":
        x_values, series = _sample(x_values, series, limits.max_points, notes)
    elif x_role is Role.TEXT and choice.kind == "bar":
        x_values, series = _top_categories(x_values, series, limits.max_categories, notes, x_name=choice.x.name)
    elif x_role is not Role.TEXT:
        bound = limits.max_points if choice.kind == "line" else min(limits.max_points, MAX_TIME_BARS)
        x_values, series = _buckets(x_values, series, bound, notes)
    elif len(x_values) > limits.max_points:  # a line along categories: their order is the query's
        notes.append(f"Showing the first {limits.max_points:,} of {len(x_values):,} {clean(choice.x.name, limit=40)} "
                     "values.")
        x_values = x_values[: limits.max_points]
        series = [Series(s.name, s.values[: limits.max_points], s.additive) for s in series]
    if not any(math.isfinite(v) for s in series for v in s.values):
        raise ChartError("Nothing to draw: every value in the result is NULL, NaN or Infinity.")
    if len(x_values) < 2 and choice.kind != "bar":
        raise ChartError("Only one point is left to draw once empty values are set aside; a chart needs two.")
    value_name = ys[0].name
    y_label = axis_label(value_name) if len(series) == 1 or choice.group is not None else _shared_label(ys)
    fallback = f"{axis_label(value_name) if len(ys) == 1 else 'Values'} by {axis_label(choice.x.name).lower()}"
    return Plan(
        kind=choice.kind, title=clean(title, limit=90) if title.strip() else title_from(question, fallback=fallback),
        x_label=axis_label(choice.x.name), y_label=y_label, x_role=x_role, x=tuple(x_values),
        series=tuple(series), notes=tuple(notes),
    )


def _shared_label(ys: Sequence[Column]) -> str:
    units = {unit_of(c.name) for c in ys}
    unit = units.pop() if len(units) == 1 else None
    return f"Value ({unit})" if unit else "Value"


def _x_of(cell: Cell, role: Role) -> XValue | None:
    if role is Role.TIME:
        return to_time(cell)
    if role in (Role.NUMBER, Role.ORDINAL):
        number = to_number(cell)
        return number if _drawable(number) else None
    return NULL_LABEL if cell is None else clean(str(cell), limit=LABEL_CHARS) or "(empty)"


@dataclass(slots=True)
class _Data:
    """Rows as drawn: x values, one value list per y column (NaN: missing), the group of each row (long format)."""

    x: list[XValue]
    ys: list[list[float]]
    groups: list[str]
    dropped: int = 0


def _extract(table: ResultTable, choice: Choice, ys: Sequence[Column]) -> _Data:
    """Rows with no usable x, or no usable value at all, are dropped (and counted); sorted along x."""
    data = _Data(x=[], ys=[[] for _ in ys], groups=[])
    for row in table.rows:
        x = _x_of(row[choice.x.index], choice.x.role)
        finite = [_drawn_value(to_number(row[c.index])) for c in ys]
        if x is None or any(math.isnan(v) for v in finite):
            data.dropped += 1
        if x is None or all(math.isnan(v) for v in finite):
            continue
        data.x.append(x)
        for out, value in zip(data.ys, finite, strict=True):
            out.append(value)
        if choice.group is not None:
            data.groups.append(str(_x_of(row[choice.group.index], Role.TEXT)))
    if choice.x.role in (Role.TIME, Role.NUMBER, Role.ORDINAL):
        order = sorted(range(len(data.x)), key=lambda i: _sort_key(data.x[i]))
        data.x = [data.x[i] for i in order]
        data.ys = [[values[i] for i in order] for values in data.ys]
        data.groups = [data.groups[i] for i in order] if data.groups else []
    return data


def _sort_key(value: XValue) -> float:
    return (value - _EPOCH).total_seconds() if isinstance(value, dt.datetime) else float(value)


def _combine(values: Sequence[float], *, add: bool) -> float:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    return math.fsum(finite) if add else math.fsum(finite) / len(finite)


def _merge_repeats(data: _Data, ys: Sequence[Column], notes: list[str], *, x_name: str) -> tuple[list[XValue],
                                                                                                   list[Series]]:
    """One value per x: repeated x values (a query that did not group) are summed, or averaged for rates."""
    positions: dict[XValue, int] = {}
    buckets: list[list[list[float]]] = [[] for _ in ys]
    xs: list[XValue] = []
    for i, x in enumerate(data.x):
        at = positions.setdefault(x, len(xs))
        if at == len(xs):
            xs.append(x)
            for bucket in buckets:
                bucket.append([])
        for bucket, values in zip(buckets, data.ys, strict=True):
            bucket[at].append(values[i])
    repeats = len(data.x) - len(xs)
    if repeats:
        how = "summed" if all(additive(c.name) for c in ys) else "averaged"
        notes.append(f"{repeats:,} rows repeat a {clean(x_name, limit=40)} value; their values are {how}.")
    series = [Series(axis_label(c.name), tuple(_combine(v, add=additive(c.name)) for v in bucket), additive(c.name))
              for c, bucket in zip(ys, buckets, strict=True)]
    return xs, series


def _pivot(data: _Data, value: Column, *, limits: Limits, notes: list[str], group_name: str
           ) -> tuple[list[XValue], list[Series]]:
    """Long format (time, category, number) → one series per category on a shared x; the largest
    ``max_series`` categories are drawn, the rest summed as "Other" (or left out for rates)."""
    add = additive(value.name)
    xs: list[XValue] = list(dict.fromkeys(data.x))
    at = {x: i for i, x in enumerate(xs)}
    cells: dict[str, list[list[float]]] = {}
    for x, group, v in zip(data.x, data.groups, data.ys[0], strict=True):
        cells.setdefault(group, [[] for _ in xs])[at[x]].append(v)
    series = {g: [_combine(vs, add=add) for vs in per_x] for g, per_x in cells.items()}
    if len(series) > limits.max_series:
        weight = {g: math.fsum(abs(v) for v in vals if not math.isnan(v)) for g, vals in series.items()}
        ranked = sorted(series, key=lambda g: -weight[g])
        keep, rest = ranked[: limits.max_series - 1], ranked[limits.max_series - 1:]
        what = clean(group_name, limit=40)
        if add:
            other = [_combine([series[g][i] for g in rest], add=True) for i in range(len(xs))]
            notes.append(f"Showing the {len(keep)} largest of {len(series)} {what} values; the other {len(rest)} are "
                         f"summed as “{OTHER}”.")
            series = {**{g: series[g] for g in keep}, OTHER: other}
        else:
            notes.append(f"Showing the {len(keep)} largest of {len(series)} {what} values; the other {len(rest)} "
                         "are not drawn.")
            series = {g: series[g] for g in keep}
    return xs, [Series(clean(g, limit=40), tuple(vals), add) for g, vals in series.items()]


def _top_categories(xs: list[XValue], series: list[Series], most: int, notes: list[str], *, x_name: str
                    ) -> tuple[list[XValue], list[Series]]:
    """At most ``most`` bars: the largest (by the first series) in the query's order, the rest as "Other"."""
    if len(xs) <= most:
        return xs, series
    first = series[0].values
    ranked = sorted(range(len(xs)), key=lambda i: -first[i] if not math.isnan(first[i]) else math.inf)
    keep = sorted(ranked[: most - 1])
    rest = ranked[most - 1:]
    what = clean(x_name, limit=40)
    if all(s.additive for s in series):
        notes.append(f"Showing the {len(keep)} largest of {len(xs):,} {what} values; the other {len(rest):,} are "
                     f"summed as “{OTHER}”.")
        out = [Series(s.name, (*[s.values[i] for i in keep], _combine([s.values[i] for i in rest], add=True)),
                      s.additive) for s in series]
        return [*[xs[i] for i in keep], OTHER], out
    notes.append(f"Showing the {len(keep)} largest of {len(xs):,} {what} values; the other {len(rest):,} are not "
                 "drawn (averages and rates cannot be summed).")
    return [xs[i] for i in keep], [Series(s.name, tuple(s.values[i] for i in keep), s.additive) for s in series]


def _buckets(xs: list[XValue], series: list[Series], most: int, notes: list[str]
             ) -> tuple[list[XValue], list[Series]]:
    """Beyond ``most`` points, average consecutive points in equal buckets (x: the bucket's first)."""
    if len(xs) <= most:
        return xs, series
    size = math.ceil(len(xs) / most)
    starts = range(0, len(xs), size)
    out_x = [xs[i] for i in starts]
    out = [Series(s.name, tuple(_combine(s.values[i:i + size], add=False) for i in starts), s.additive)
           for s in series]
    notes.append(f"{len(xs):,} points are averaged in groups of {size} to {len(out_x):,} points.")
    return out_x, out


def _sample(xs: list[XValue], series: list[Series], most: int, notes: list[str]
            ) -> tuple[list[XValue], list[Series]]:
    """Beyond ``most`` points a scatter chart shows every k-th (an even sample keeps the cloud's shape)."""
    if len(xs) <= most:
        return xs, series
    step = math.ceil(len(xs) / most)
    notes.append(f"Showing every {step}th of {len(xs):,} points ({len(xs[::step]):,} drawn).")
    return xs[::step], [Series(s.name, s.values[::step], s.additive) for s in series]

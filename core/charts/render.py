"""A :class:`~core.charts.shape.Plan` → PNG bytes with matplotlib's Agg backend (no display, no pyplot).

Imported only when the first chart is drawn (matplotlib takes a moment to load, and it is an optional
dependency: ``pip install 'pgbot[charts]'``). Figures are made with ``Figure`` and ``FigureCanvasAgg``
directly, never pyplot's global state; text is never parsed as math (``$`` in a column name stays ``$``).
"""

from __future__ import annotations

import datetime as dt
import io
import math

import matplotlib

matplotlib.use("Agg")  # headless, whatever MPLBACKEND says: pgbot never opens a window (set before the imports below)

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from core.charts.shape import Plan, Role, XValue

matplotlib.rcParams["text.parse_math"] = False
matplotlib.rcParams["axes.unicode_minus"] = False

MAX_TICK_LABELS = 24
TICK_CHARS = 24


def render_png(plan: Plan, *, width_px: int, height_px: int, dpi: int) -> bytes:
    """Draw ``plan`` at exactly ``width_px`` × ``height_px`` pixels; runs in a worker thread."""
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if plan.kind == "bar":
        _bars(axes, plan)
    elif plan.kind == "scatter":
        for series in plan.series:
            axes.scatter(_xs(plan), series.values, s=12, alpha=0.7, label=series.name)
        if plan.x_role is Role.TIME:
            _date_axis(axes)
    else:
        _lines(axes, plan)
    axes.set_title(plan.title, loc="left", fontsize="large")
    axes.set_xlabel(plan.x_label)
    axes.set_ylabel(plan.y_label)
    axes.grid(True, alpha=0.3)
    axes.yaxis.set_major_formatter(FuncFormatter(_number))
    if plan.x_role in (Role.NUMBER, Role.ORDINAL) and plan.kind != "bar":
        axes.xaxis.set_major_formatter(FuncFormatter(_number))
    if len(plan.series) > 1:
        axes.legend(fontsize="small", loc="best")
    buffer = io.BytesIO()
    canvas.print_png(buffer)  # type: ignore[no-untyped-call]
    return buffer.getvalue()


def _xs(plan: Plan) -> list[float]:
    """x as numbers: times as matplotlib's day numbers (the axis is then made a date axis)."""
    return [float(date2num(x)) if isinstance(x, dt.datetime) else float(x)  # type: ignore[no-untyped-call]
            for x in plan.x]


def _lines(axes: Axes, plan: Plan) -> None:
    marker = "o" if len(plan.x) <= 60 else None
    if plan.x_role is Role.TEXT:
        positions = range(len(plan.x))
        for series in plan.series:
            axes.plot(positions, series.values, marker=marker, label=series.name)
        _category_ticks(axes, [str(x) for x in plan.x])
        return
    for series in plan.series:
        axes.plot(_xs(plan), series.values, marker=marker, markersize=4, label=series.name)
    if plan.x_role is Role.TIME:
        _date_axis(axes)


def _date_axis(axes: Axes) -> None:
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _bars(axes: Axes, plan: Plan) -> None:
    """Bars at evenly spaced positions (categories, or periods in order), grouped when there are several series."""
    count = len(plan.series)
    width = 0.8 / count
    for i, series in enumerate(plan.series):
        positions = [p + (i - (count - 1) / 2) * width for p in range(len(plan.x))]
        heights = [0.0 if math.isnan(v) else v for v in series.values]
        axes.bar(positions, heights, width=width, label=series.name)
    axes.axhline(0, color="black", linewidth=0.6)
    _category_ticks(axes, [_label(x, plan.x_role) for x in plan.x])


def _category_ticks(axes: Axes, labels: list[str]) -> None:
    """At most :data:`MAX_TICK_LABELS` labels, shortened; slanted when they are long or many."""
    step = max(1, math.ceil(len(labels) / MAX_TICK_LABELS))
    shown = list(range(0, len(labels), step))
    texts = [_short(labels[i]) for i in shown]
    slanted = len(shown) > 8 or any(len(t) > 10 for t in texts)
    axes.set_xticks(shown, texts, rotation=35 if slanted else 0, ha="right" if slanted else "center",
                    fontsize="small")


def _label(value: XValue, role: Role) -> str:
    if role is Role.TIME and not isinstance(value, str | float):
        midnight = value.hour == value.minute == value.second == 0
        return value.strftime("%Y-%m-%d") if midnight else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return _number(value, None)
    return str(value)


def _short(text: str) -> str:
    return text if len(text) <= TICK_CHARS else text[: TICK_CHARS - 1] + "…"


def _number(value: float, _position: object) -> str:
    """1234567 → "1,234,567"; 0.25 → "0.25"; 1.5e12 → "1.5e+12"."""
    if not math.isfinite(value):
        return ""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e15 or abs(value) < 1e-4:
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"

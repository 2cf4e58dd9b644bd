"""Draw a result as a chart without blocking the event loop.

Planning (pure Python over up to ``max_rows`` rows) and rendering (matplotlib) run together in one worker
thread of pgbot's own single-thread pool: charts are drawn one at a time, so a burst of them queues there
instead of occupying the default pool that file writes and the terminal's input also use. A turn cancelled
while its chart waits in the queue never draws it.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from core.charts.shape import ChartKind, Limits, plan_chart
from core.config import ChartSettings
from core.errors import ChartError
from core.messages import ChartImage, ResultTable

NO_MATPLOTLIB = ("Charts need matplotlib, which this pgbot was installed without: "
                 "pip install 'pgbot[charts]' (the Docker image and the demo include it).")
OFFER_SAMPLE_ROWS = 1000  # can_chart plans from this many rows: it runs on the event loop, for every answer

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgbot-chart")


async def draw_chart(
    table: ResultTable, *, settings: ChartSettings, kind: ChartKind | None = None, title: str = "",
    question: str = "", sql: str = "",
) -> ChartImage:
    """The chart of ``table`` as a PNG; raises :class:`ChartError` (a message for people) when it has none."""
    work = functools.partial(_draw, table, settings=settings, kind=kind, title=title, question=question, sql=sql)
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, work)


def _draw(
    table: ResultTable, *, settings: ChartSettings, kind: ChartKind | None, title: str, question: str, sql: str
) -> ChartImage:
    limits = Limits(max_categories=settings.max_categories, max_points=settings.max_points,
                    max_series=settings.max_series)
    plan = plan_chart(table, kind=kind, title=title, question=question, limits=limits)
    try:
        from core.charts.render import render_png
    except ImportError as exc:
        raise ChartError(NO_MATPLOTLIB) from exc
    png = render_png(plan, width_px=settings.width_px, height_px=settings.height_px, dpi=settings.dpi)
    return ChartImage(png=png, kind=plan.kind, title=plan.title, width=settings.width_px,
                      height=settings.height_px, notes=plan.notes, sql=sql)


def can_chart(table: ResultTable | None) -> bool:
    """Whether a "Chart" button is worth offering under this result (a quick look at its first rows)."""
    if table is None or table.row_count < 2:
        return False
    sample = table if table.row_count <= OFFER_SAMPLE_ROWS else ResultTable(
        columns=table.columns, rows=table.rows[:OFFER_SAMPLE_ROWS])
    try:
        plan_chart(sample)
    except ChartError:
        return False
    return True


def with_notes(text: str, chart: ChartImage) -> str:
    """``text`` and what the chart leaves out or changed ("Chart: …"), so a cut is never silent."""
    notes = "Chart: " + " ".join(chart.notes) if chart.notes else ""
    return f"{text}\n\n{notes}" if notes and text else notes or text

"""The chart tool: one read-only query, drawn as a chart image that the answer carries (core.charts).

It runs the query exactly as ``run_query`` does (the guard, a READ ONLY transaction as the user's role, the
row cap), so a chart can never read more than a plain question could. One tool with a plain name was chosen
over a ``chart`` argument on ``run_query``: small models pick a tool by name ("plot" → ``make_chart``) far
more reliably than they fill in an optional argument.
"""

from __future__ import annotations

from typing import Literal

from core.charts import ChartKind, draw_chart
from core.errors import ChartError, refused_as_hint
from core.messages import ChartImage
from core.tools import query  # the module, not the function: this module registers only its own tool
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool

KindArg = Literal["auto", "line", "bar", "scatter"]


async def query_chart(
    ctx: ToolContext, sql: str, *, kind: ChartKind | None, title: str = "", question: str = ""
) -> tuple[ToolOutput, ChartImage]:
    """Run ``sql`` on the read path as ``ctx``'s user and draw its result; ``/chart`` and the Chart button
    use it. Raises ModelHint (what the model would be told), ChartError or DatabaseError."""
    output = await _read(ctx, sql)
    return output, await chart_of(ctx, output, kind=kind, title=title, question=question)


async def _read(ctx: ToolContext, sql: str) -> ToolOutput:
    """``run_query``'s read path, for reads only: a chart never becomes a change proposal, whatever the
    read tool does with a change sent to it."""
    with refused_as_hint(advice="Charts are drawn from read-only queries only."):
        ctx.guard.check_read(sql)
    return await query.run_query(ctx, sql)


async def chart_of(
    ctx: ToolContext, output: ToolOutput, *, kind: ChartKind | None, title: str = "", question: str = ""
) -> ChartImage:
    """The chart of a query's output (its table and statement); raises ChartError when it has none."""
    if output.table is None:
        raise ChartError("The statement returned no rows to draw.")
    chart = await draw_chart(output.table, settings=ctx.settings.charts, kind=kind, title=title,
                             question=question or ctx.question, sql=output.sql[-1] if output.sql else "")
    ctx.log.info("chart_drawn", kind=chart.kind, rows=output.table.row_count, notes=len(chart.notes))
    return chart


@tool(kind=ToolKind.READ)
async def make_chart(ctx: ToolContext, sql: str, kind: KindArg = "auto", title: str = "") -> ToolOutput:
    """Run one read-only query and show its result as a chart image with your answer. Use it when the user
    asks to plot, chart, graph or visualise something. Return few rows, already aggregated (GROUP BY a week,
    a month or a category): a time column and numbers make a line, a category and a number a bar chart,
    two numbers a scatter chart.

    Args:
        sql: exactly one read-only query whose result is drawn
        kind: auto (chosen from the result), line, bar or scatter
        title: a short title for the chart; empty: taken from the question
    """
    output = await _read(ctx, sql)
    try:
        chart = await chart_of(ctx, output, kind=None if kind == "auto" else kind, title=title)
    except ChartError as exc:
        # The rows are fine; only the picture is impossible. The model answers with the table and says why.
        return ToolOutput(text=f"{output.text}\nNo chart could be drawn: {exc.user_message} Tell the user.",
                          sql=output.sql, table=output.table)
    notes = f" Notes shown under it: {' '.join(chart.notes)}" if chart.notes else ""
    return ToolOutput(
        text=f"{output.text}\nA {chart.kind} chart titled “{chart.title}” is shown with your answer.{notes}",
        sql=output.sql, table=output.table, chart=chart,
    )

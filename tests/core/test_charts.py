"""core.charts: the shape → kind rules, the notes for everything cut or changed (pure logic), and real PNGs
drawn by matplotlib's Agg canvas in a worker thread."""

from __future__ import annotations

import asyncio
import math

import pytest

from core.charts import can_chart, chart_request, draw_chart
from core.charts.labels import axis_label, title_from
from core.charts.shape import OTHER, Limits, Role, infer_columns, plan_chart
from core.config import ChartSettings
from core.errors import ChartError
from core.messages import Cell, ResultTable
from tests.adapters.chart_env import png_size, png_software


def table(columns: list[str], rows: list[tuple[Cell, ...]], **extra: object) -> ResultTable:
    return ResultTable(columns=tuple(columns), rows=tuple(rows), **extra)  # type: ignore[arg-type]


DAYS = [f"2026-01-{d:02d}T00:00:00+00:00" for d in range(1, 11)]


# --- which kind ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("columns", "rows", "kind", "series"), [
    (["week", "signups"], [(d, i) for i, d in enumerate(DAYS)], "line", ["Signups"]),
    (["day", "orders", "refunds"], [(d, i, i / 2) for i, d in enumerate(DAYS)], "line", ["Orders", "Refunds"]),
    (["month", "country", "n"], [(f"2026-{m:02d}", c, m) for m in range(1, 4) for c in "AB"], "line", ["A", "B"]),
    (["year", "revenue"], [(2020 + i, i * 10) for i in range(5)], "line", ["Revenue"]),  # years are an x axis
    (["region", "revenue"], [("north", "12.50"), ("south", "7.25")], "bar", ["Revenue"]),  # numeric as text
    (["customer_id", "total"], [(1, 5), (2, 7), (3, 1)], "bar", ["Total"]),  # an id labels, it is no measure
    (["ok", "n"], [(True, 3), (False, 4)], "bar", ["N"]),
    (["height_cm", "weight_kg"], [(150 + i, 50 + i * 1.5) for i in range(6)], "scatter", ["Weight (kg)"]),
])
def test_the_result_shape_chooses_the_kind(
    columns: list[str], rows: list[tuple[Cell, ...]], kind: str, series: list[str]
) -> None:
    plan = plan_chart(table(columns, rows))
    assert plan.kind == kind
    assert [s.name for s in plan.series] == series
    assert plan.notes == ()


def test_roles_come_from_every_value() -> None:
    columns = infer_columns(table(
        ["when", "n", "label", "mixed", "empty"],
        [("2026-01-01", 1, "a", 1, None), ("2026-01-02 10:00:00+02", "2.5", "b", "x", None),
         ("infinity", None, "c", 2, None)],
    ))
    assert [c.role for c in columns] == [Role.TIME, Role.NUMBER, Role.TEXT, Role.TEXT, Role.EMPTY]


@pytest.mark.parametrize(("columns", "rows", "message"), [
    (["n"], [(1,)], "The result has one row: a chart needs at least two rows to compare."),
    (["n"], [], "The result has no rows"),
    (["name", "city"], [("a", "x"), ("b", "y")], "no numeric column to draw (columns: name, city)"),
    (["n"], [(1,), (2,)], "The result has one number (n) and nothing to draw it against"),
    (["k", "v"], [("a", None), ("b", "NaN"), ("c", math.inf)], "every value in the result is NULL, NaN or Infinity"),
])
def test_results_that_cannot_be_charted_say_why(columns: list[str], rows: list[tuple[Cell, ...]], message: str) -> None:
    with pytest.raises(ChartError) as caught:
        plan_chart(table(columns, rows))
    assert message in caught.value.user_message
    assert not can_chart(table(columns, rows))


def test_a_requested_kind_is_kept_when_it_fits_and_replaced_with_a_note_when_not() -> None:
    by_region = table(["region", "revenue"], [("north", 3), ("south", 5), ("east", 1)])
    assert plan_chart(by_region, kind="line").kind == "line"  # a line along the query's order of categories
    scatter = plan_chart(by_region, kind="scatter")
    assert scatter.kind == "bar"
    assert scatter.notes == ("Drawn as a bar chart instead of a scatter chart: a scatter chart needs two numbers, "
                             "or a time and a number.",)
    over_time = table(["day", "n"], [(d, i) for i, d in enumerate(DAYS)])
    assert plan_chart(over_time, kind="bar").kind == "bar"
    assert plan_chart(over_time, kind="scatter").kind == "scatter"


# --- never silently -----------------------------------------------------------------------------------------

def test_many_categories_become_the_largest_bars_and_other_summed() -> None:
    rows: list[tuple[Cell, ...]] = [(f"r{i:02d}", i) for i in range(50)]
    plan = plan_chart(table(["region", "revenue_usd"], rows), limits=Limits(max_categories=20))
    assert len(plan.x) == 20 and plan.x[-1] == OTHER
    assert plan.x[:3] == ("r31", "r32", "r33")  # the 19 largest, in the query's order
    assert plan.series[0].values[-1] == sum(range(31))
    assert plan.notes == ("Showing the 19 largest of 50 region values; the other 31 are summed as “Other”.",)
    assert plan.y_label == "Revenue (USD)"


def test_averages_are_never_summed_into_other() -> None:
    rows: list[tuple[Cell, ...]] = [(f"r{i:02d}", i / 3) for i in range(30)]
    plan = plan_chart(table(["region", "avg_price"], rows), limits=Limits(max_categories=10))
    assert len(plan.x) == 9 and OTHER not in plan.x
    assert "the other 21 are not drawn (averages and rates cannot be summed)" in plan.notes[0]


def test_long_lines_are_averaged_in_buckets_and_scatter_clouds_sampled() -> None:
    rows: list[tuple[Cell, ...]] = [(f"2026-01-01T00:{m // 60 % 60:02d}:{m % 60:02d}", float(m)) for m in range(3000)]
    plan = plan_chart(table(["at", "load"], rows), limits=Limits(max_points=1000))
    assert len(plan.x) == 1000
    assert plan.series[0].values[:2] == (1.0, 4.0)  # means of (0, 1, 2) and (3, 4, 5)
    assert plan.notes == ("3,000 points are averaged in groups of 3 to 1,000 points.",)
    cloud: list[tuple[Cell, ...]] = [(i, i * 2) for i in range(5000)]
    sampled = plan_chart(table(["a", "b"], cloud), limits=Limits(max_points=1000))
    assert sampled.kind == "scatter" and len(sampled.x) == 1000
    assert sampled.notes == ("Showing every 5th of 5,000 points (1,000 drawn).",)


def test_rows_at_the_cap_repeats_and_bad_values_each_get_a_note() -> None:
    rows: list[tuple[Cell, ...]] = [("a", 1), ("b", None), ("a", 2), ("c", "NaN"), ("d", "Infinity"), ("e", -math.inf),
                                    ("f", 4)]
    plan = plan_chart(table(["k", "n"], rows, truncated=True, row_cap=7))
    assert plan.x == ("a", "f") and plan.series[0].values == (3.0, 4.0)
    assert plan.notes == (
        "The query returned more than 7 rows; the chart shows the first 7. Group or filter in SQL to chart every row.",
        "4 of 7 rows have an empty or non-numeric value (NULL, NaN, Infinity or beyond ±1e100) that is not drawn.",
        "1 rows repeat a k value; their values are summed.",
    )


def test_many_series_keep_the_largest_and_say_so() -> None:
    rows: list[tuple[Cell, ...]] = [(d, f"c{k}", k) for d in DAYS[:3] for k in range(12)]
    plan = plan_chart(table(["day", "country", "n"], rows), limits=Limits(max_series=4))
    assert [s.name for s in plan.series] == ["c11", "c10", "c9", OTHER]
    assert plan.series[-1].values == (sum(range(9)),) * 3
    assert plan.notes == ("Showing the 3 largest of 12 country values; the other 9 are summed as “Other”.",)
    wide = table(["day", *[f"m{i}" for i in range(10)]], [(d, *range(10)) for d in DAYS[:3]])
    assert plan_chart(wide, limits=Limits(max_series=8)).notes == ("2 more numeric column(s) not drawn: m8, m9.",)


# --- labels and words ---------------------------------------------------------------------------------------

def test_labels_and_titles_come_from_names_and_the_question() -> None:
    assert axis_label("total_revenue_usd") == "Total revenue (USD)"
    assert axis_label("p95_latency_ms") == "P95 latency (ms)"
    assert axis_label("") == "Value"
    assert title_from("Plot weekly signups this year", fallback="x") == "Weekly signups this year"
    assert title_from("bar chart of revenue by region?", fallback="x") == "Revenue by region"
    assert title_from("plot it", fallback="Signups by week") == "Signups by week"
    plan = plan_chart(table(["region", "revenue"], [("a", 1), ("b", 2)]))
    assert plan.title == "Revenue by region"  # no question: from the column names


def test_hostile_names_are_cut_to_one_plain_line() -> None:
    name = "<!channel> *bold* @everyone\n\u202e$\\frac{1}{0}$ " + "x" * 200
    label = axis_label(name)
    assert "\n" not in label and "\u202e" not in label and len(label) <= 60
    assert title_from("plot " + "y" * 500, fallback="") .endswith("…")


@pytest.mark.parametrize(("question", "kind"), [
    ("Plot weekly signups this year", None), ("bar chart of revenue by region", "bar"),
    ("graph orders per day as a line", "line"), ("scatter plot of price against weight", "scatter"),
    ("can you visualise revenue?", None),
])
def test_questions_that_ask_for_a_chart(question: str, kind: str | None) -> None:
    request = chart_request(question)
    assert request is not None and request.kind == kind


@pytest.mark.parametrize("question", ["how many orders shipped?", "list the graphql endpoints", "plotting area"])
def test_questions_that_do_not(question: str) -> None:
    assert chart_request(question) is None


# --- real PNGs ----------------------------------------------------------------------------------------------

async def test_the_png_is_real_sized_as_configured_and_drawn_by_agg() -> None:
    import matplotlib

    settings = ChartSettings(width_px=800, height_px=500, dpi=80)
    weekly = table(["week", "signups"], [(d, i * 3) for i, d in enumerate(DAYS)])
    chart = await draw_chart(weekly, settings=settings, question="Plot weekly signups this year", sql="SELECT 1")
    assert png_size(chart.png) == (800, 500)
    assert png_software(chart.png).startswith("Matplotlib")
    assert matplotlib.get_backend().lower() == "agg"
    assert (chart.kind, chart.title, chart.filename, chart.sql) == ("line", "Weekly signups this year",
                                                                    "chart-line.png", "SELECT 1")


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize(("rows", "notes"), [
    ([("$\\frac{1}{0", 1), ("$$", 2), ("<b>@here</b>", 3), ("😀" * 40, 4), ("", 5), (None, 6)], 0),  # labels
    ([("a", 1e308), ("b", -1e308), ("c", 5e-324), ("d", 1.0)], 1),  # beyond ±1e100: left out, with a note
])
async def test_hostile_labels_and_values_draw_without_error(rows: list[tuple[Cell, ...]], notes: int) -> None:
    chart = await draw_chart(table(["$name`", "v"], rows), settings=ChartSettings())
    assert png_size(chart.png) == (1000, 600)
    assert len(chart.notes) == notes


async def test_drawing_runs_off_the_event_loop() -> None:
    """A heartbeat on the loop keeps beating while a big chart is planned and drawn."""
    rows: list[tuple[Cell, ...]] = [(f"2026-01-01T{h % 24:02d}:{m:02d}:00", (h * m) % 97, m, h) for h in range(24)
                                    for m in range(60)] * 20
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            await asyncio.sleep(0.005)
            beats += 1

    task = asyncio.create_task(heartbeat())
    started = asyncio.get_running_loop().time()
    chart = await draw_chart(table(["at", "a", "b", "c"], rows), settings=ChartSettings(max_points=20_000))
    took = asyncio.get_running_loop().time() - started
    task.cancel()
    assert chart.kind == "line" and "repeat" in " ".join(chart.notes)
    assert beats >= took / 0.005 / 4, (beats, took)  # the loop was free most of the time

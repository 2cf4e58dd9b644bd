"""Charts of query results: the result's shape picks the kind, labels come from names, big results are cut
with a note (pure logic), and a headless matplotlib (Agg) draws the PNG in a worker thread.
May import core.messages, core.errors and core.config only: no database, no tools, no adapters."""

from core.charts.draw import can_chart, draw_chart, with_notes
from core.charts.intent import ChartRequest, chart_request
from core.charts.shape import KINDS, ChartKind

__all__ = ["KINDS", "ChartKind", "ChartRequest", "can_chart", "chart_request", "draw_chart", "with_notes"]

"""Hostile chart requests through the real Agent over the scripted HTTP model and real Postgres: a query of a
million rows, names built to ping or format, NaN, Infinity and NULL from Postgres itself, a kind that does not
fit, SQL the guard refuses, and results with nothing to draw."""

from __future__ import annotations

import json

from bot.wiring import build_agent
from core import ReplyKind
from tests import llm_server as llm
from tests.adapters.chart_env import png_size
from tests.helpers import final_reply, message, settings_for


def tool_results(request: dict[str, object]) -> list[str]:
    messages = request["messages"]
    assert isinstance(messages, list)
    return [m["content"] for m in messages if m["role"] == "tool"]


async def test_a_chart_of_a_million_rows_is_capped_like_any_read_and_says_so(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    sql = "SELECT g AS n, g % 97 AS v FROM generate_series(1, 1000000) g"
    llm_server.script(llm.tool_call("make_chart", {"sql": sql}), llm.text("Done."))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, max_rows=300))
    try:
        reply = await final_reply(agent, message("plot v against n"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.chart is not None
    assert reply.table is not None and reply.table.row_count == 300 and reply.table.truncated
    assert reply.chart.kind == "scatter" and png_size(reply.chart.png) == (1000, 600)
    note = "The query returned more than 300 rows; the chart shows the first 300."
    assert note in reply.chart.notes[0] and note in reply.text  # in the reply people read, not only the image
    assert "is shown with your answer" in tool_results(llm_server.requests[1])[0]


async def test_hostile_names_and_non_finite_values_from_postgres(fresh_db: str, llm_server: llm.ScriptedLlmServer
                                                                 ) -> None:
    sql = ("SELECT '<!channel> *' || g || '* @everyone' AS \"<@U0ADMIN> `$x$`\", "
           "CASE g WHEN 2 THEN 'NaN'::numeric WHEN 3 THEN 'Infinity'::numeric WHEN 4 THEN NULL "
           "WHEN 5 THEN '-Infinity'::numeric ELSE g * 1.5 END AS \"**revenue**_usd\" FROM generate_series(1, 8) g")
    llm_server.script(llm.tool_call("make_chart", {"sql": sql, "title": "x" * 500 + "\n<!here>"}),
                      llm.text("Done."))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("chart it"))
    finally:
        await agent.aclose()
    assert reply.chart is not None and reply.chart.kind == "bar"
    assert reply.chart.notes == ("4 of 8 rows have an empty or non-numeric value (NULL, NaN, Infinity or beyond "
                                 "±1e100) that is not drawn.",)
    assert len(reply.chart.title) <= 90 and "\n" not in reply.chart.title  # the model's title, cut to one line
    assert reply.chart.filename == "chart-bar.png"  # titles never reach a file name


async def test_a_kind_that_does_not_fit_and_results_with_nothing_to_draw(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    by_kind = "SELECT relkind::text AS kind, count(*) AS n FROM pg_class GROUP BY 1"
    only_text = "SELECT relname::text AS name FROM pg_class LIMIT 5"
    llm_server.script(
        llm.tool_call("make_chart", {"sql": by_kind, "kind": "scatter"}), llm.text("Done."),
        llm.tool_call("make_chart", {"sql": only_text}), llm.text("Here are the names."),
        llm.tool_call("make_chart", {"sql": "DELETE FROM pg_class"}), llm.text("I cannot do that."),
        llm.tool_call("make_chart", {"sql": "SELECT 1", "kind": "pie"}), llm.text("No pie."),
        llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM pg_class"}), llm.text("There are many."),
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        fallback = await final_reply(agent, message("scatter chart of relations by kind"))
        text_only = await final_reply(agent, message("plot the relation names"))
        refused = await final_reply(agent, message("plot after deleting pg_class"))
        pie = await final_reply(agent, message("pie chart please"))
        one_row = await final_reply(agent, message("graph the number of relations"))
    finally:
        await agent.aclose()
    assert fallback.chart is not None and fallback.chart.kind == "bar"
    assert "Drawn as a bar chart instead of a scatter chart" in fallback.text

    # The rows are fine, the picture is not: the model is told why; the person gets the table and a note.
    assert text_only.kind is ReplyKind.ANSWER and text_only.chart is None and text_only.table is not None
    assert "No chart could be drawn: The result has no numeric column" in tool_results(llm_server.requests[3])[0]
    assert text_only.text.endswith("No chart: The result has no numeric column to draw (columns: name). A chart "
                                   "needs a number, such as a count or a sum, and something to draw it against.")

    assert refused.chart is None and tool_results(llm_server.requests[5])[0].startswith("ERROR: Refused")
    assert "Invalid arguments for make_chart: kind" in tool_results(llm_server.requests[7])[0]
    assert pie.chart is None
    assert one_row.chart is None and "No chart: The result has one row" in one_row.text
    assert json.dumps(one_row.to_json())  # still serialisable for `pgbot ask --format json`

"""The line pgbot states from a result without the model (core.agent.result_answer): what each shape of
result reads as, that values look as the table shows them, and that data never turns into markup."""

from __future__ import annotations

import decimal

import pytest

from core.agent.result_answer import result_answer, states_result
from core.llm.base import Completion, ToolCall
from core.messages import ResultTable

CALL = (ToolCall(id="c1", name="run_query", arguments='{"sql": "SELECT 1"}'),)


@pytest.mark.parametrize(("table", "stated"), [
    (ResultTable(columns=("n",), rows=()), "The query returned no rows."),
    (ResultTable(columns=("n",), rows=((1234567,),), kinds=("int",)), "n: 1,234,567"),
    (ResultTable(columns=("year",), rows=((2026,),), kinds=("int",)), "year: 2026"),  # a label, not an amount
    # cells are as results hold them: numbers, ISO text for times (core.db.postgres)
    (ResultTable(columns=("avg",), rows=((decimal.Decimal("3.14159265"),),), kinds=("numeric",)), "avg: 3.14"),
    (ResultTable(columns=("last",), rows=(("2026-03-01T11:00:00+00:00",),), kinds=("timestamptz",),
                 time_zone="Europe/Berlin"), "last: 2026-03-01 12:00:00"),
    (ResultTable(columns=("country",), rows=((None,),), kinds=("text",)), "country: —"),
    (ResultTable(columns=("name",), rows=(("Ada\nLovelace `x`",),), kinds=("text",)), "name: `Ada Lovelace 'x'`"),
    (ResultTable(columns=("note",), rows=(("y" * 200,),), kinds=("text",)), f"note: `{'y' * 59}…`"),
    (ResultTable(columns=("<!here>",), rows=((1,),), kinds=("int",)), "`<!here>`: 1"),
    (ResultTable(columns=("id", "name"), rows=((1, "a"),), kinds=("int", "text")), "The query returned 1 row."),
    (ResultTable(columns=("id",), rows=tuple((i,) for i in range(500)), truncated=True, row_cap=500),
     "The query returned 500+ rows."),
])
def test_each_shape_of_result_reads_as_the_table_shows_it(table: ResultTable, stated: str) -> None:
    assert result_answer(table) == stated


@pytest.mark.parametrize(("setting", "from_text", "states"), [
    ("auto", True, True), ("auto", False, False), ("result", False, True), ("model", True, False),
])
def test_who_writes_the_answer(setting: str, from_text: bool, states: bool) -> None:
    completion = Completion(tool_calls=CALL, calls_from_text=from_text)
    assert states_result(setting, completion) is states  # type: ignore[arg-type]

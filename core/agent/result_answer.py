"""The answer pgbot states itself from a query's result, when the model is not asked to (``[llm] answer_text``).

A small local model spends seconds to minutes on every call; the call after a successful query only turns
the rows, which the reply shows anyway, into a sentence. Stating the result directly saves that call and
can say nothing the rows do not: a single value is named with its column, anything else is counted.
"""

from __future__ import annotations

import re

from core.column_kinds import BOOL, DATE, INTERVAL, NUMBERS, TEXT, TIMESTAMP, TIMESTAMPTZ
from core.config import AnswerText
from core.display import MAX_CELL, format_value, rows_text, shorten, zone_of
from core.llm.base import Completion
from core.messages import ResultTable

_PLAIN_NAME = re.compile(r"[\w ]{1,63}")
_PLAIN = NUMBERS | {BOOL, DATE, TIMESTAMP, TIMESTAMPTZ, INTERVAL}  # values that cannot carry markup or mentions


def states_result(setting: AnswerText, completion: Completion) -> bool:
    """Whether pgbot answers from the result of ``completion``'s query itself: always for "result"; for
    "auto" when the model wrote the query as text (a model without native tool calls, typically small)."""
    return setting == "result" or (setting == "auto" and completion.calls_from_text)


def result_answer(table: ResultTable) -> str:
    """One line for the top of the reply: the value of a one-cell result, else how many rows came back.

    A text value is data from the database, and a column name comes from the model's SQL: either goes in
    backticks, shortened and on one line, when it could hold markup, a link or a mention, so it is shown as
    it is, never rendered (the table below shows it whole)."""
    if table.row_count == 0:
        return "The query returned no rows."
    if table.row_count != 1 or len(table.columns) != 1:
        return f"The query returned {rows_text(table.row_count, more_exist=table.truncated)}."
    name, value = table.columns[0], table.rows[0][0]
    kind = table.kinds[0] if table.kinds else TEXT
    shown = format_value(value, kind=kind, name=name, tz=zone_of(table.time_zone)[0])
    if value is not None and kind not in _PLAIN:
        shown = _quoted(shown)
    return f"{name if _PLAIN_NAME.fullmatch(name) else _quoted(name)}: {shown}"


def _quoted(text: str) -> str:
    flat = " ".join(text.replace("`", "'").split())
    return f"`{shorten(flat, MAX_CELL)}`"

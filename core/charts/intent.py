"""Does a question ask for a chart, and of which kind? ("plot weekly signups", "bar chart of revenue").

Plain word matching on purpose: it works the same with every model, also one that never calls the chart
tool. A false positive ("chart of accounts") costs one extra image, or a short note when the result cannot
be drawn; it never changes the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.charts.shape import ChartKind

_ASKS = re.compile(r"\b(?:plot(?:s|ted)?|charts?|graphs?|visuali[sz]e|diagram|histogram)\b", re.IGNORECASE)
_KIND: tuple[tuple[ChartKind, re.Pattern[str]], ...] = (
    ("scatter", re.compile(r"\bscatter", re.IGNORECASE)),
    ("bar", re.compile(r"\b(?:bar|bars|column chart|histogram)\b", re.IGNORECASE)),
    ("line", re.compile(r"\b(?:line|lines)\b", re.IGNORECASE)),
)


@dataclass(frozen=True, slots=True)
class ChartRequest:
    """A chart was asked for; ``kind`` None: chosen from the result's shape."""

    kind: ChartKind | None = None


def chart_request(question: str) -> ChartRequest | None:
    """The chart a question asks for, or None when it asks for none."""
    if not _ASKS.search(question):
        return None
    for kind, pattern in _KIND:
        if pattern.search(question):
            return ChartRequest(kind=kind)
    return ChartRequest()

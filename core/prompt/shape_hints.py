"""Query-shape hints: one line of SQL advice for the phrasings small models most often get wrong.

Measured on the quality bench with a 1.5B model (docs/QUALITY.md), the questions pgbot lost were not about
the schema but about the shape of the query: "which categories have no products" answered with a LEFT JOIN
and no ``IS NULL`` filter, "every employee with their manager" with an inner join that drops the CEO, a
running total written as a window over an ungrouped column. A larger model knows these idioms; a small one
follows them when the question's own message names them. Each hint is triggered by the wording alone (no
table names, no bench ids), says the idiom in a line, and is left out when the question does not ask for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = "SQL shape for this question:"


@dataclass(frozen=True, slots=True)
class ShapeHint:
    name: str
    pattern: re.Pattern[str]
    advice: str


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


HINTS: tuple[ShapeHint, ...] = (
    ShapeHint(
        "anti_join",
        _words(r"no", r"without", r"never", r"nobody", r"no\s+one", r"not\s+(?:any|yet)", r"none", r"zero",
               r"(?:has|have|had|did|do|does|is|are|was|were)(?:n[’']t|\s+not)(?!\s+(?:match|equal|exceed|add))"),
        "'No'/'without'/'never': a missing value in the same table is col IS NULL; no matching row in another "
        "table is WHERE NOT EXISTS (SELECT 1 FROM other o WHERE o.key = t.key) (an inner JOIN finds the "
        "opposite; a LEFT JOIN needs WHERE o.key IS NULL).",
    ),
    ShapeHint(
        "keep_all_rows",
        re.compile(r"\b(?:every|all|each)\b[^.?!]*\b(?:with|along\s+with|together\s+with|and\s+their|"
                   r"including)\b", re.IGNORECASE),
        "'Every'/'all'/'each' keeps the rows that have no match too: LEFT JOIN the other table (a missing "
        "match shows as NULL), and count(o.key), not count(*), when counting matches.",
    ),
    ShapeHint(
        "running_total",
        _words(r"running\s+(?:total|sum|count)", r"cumulative(?:ly)?"),
        "A running total over grouped rows wraps the aggregate in a window: sum(count(*)) OVER (ORDER BY "
        "the group key), with the same GROUP BY.",
    ),
    ShapeHint(
        "calendar_buckets",
        _words(r"(?:each|every|per|by|a)\s+(?:month|week|quarter)", r"monthly", r"weekly", r"quarterly",
               r"month[\s-]+(?:over|on|by)[\s-]+month", r"week[\s-]+(?:over|on|by)[\s-]+week"),
        "Group calendar periods with date_trunc('month', col) (or 'week', 'quarter'): EXTRACT(MONTH FROM col) "
        "would merge the same month of different years.",
    ),
    ShapeHint(
        "per_group_then_filter",
        _words(r"(?:more\s+than\s+(?:once|one|\d+)|at\s+least\s+(?:twice|two|[2-9]|\d\d+))(?!\s*(?:%|percent|"
               r"seconds?|minutes?|hours?|days?|weeks?|months?|years?|stars?|\.\d))", r"repeat(?:ed)?", r"again",
               r"multiple"),
        "Count per entity first in a subquery (SELECT key, count(*) AS n FROM … GROUP BY key), then filter "
        "or count over it (WHERE n > 1, count(*) FILTER (WHERE n > 1)).",
    ),
    ShapeHint(
        "percentage",
        _words(r"percent(?:age)?", r"share", r"proportion", r"rate", r"ratio", r"fraction"),
        "A percentage is 100.0 * part / total (numeric, so no integer division), e.g. "
        "100.0 * count(*) FILTER (WHERE cond) / count(*).",
    ),
    ShapeHint(
        "top_n",
        _words(r"top\s+\d+", r"\d+\s+(?:most|best|largest|biggest|highest|lowest|least|cheapest|latest|newest|"
               r"oldest|recent|most\s+recent)", r"most\s+recent", r"latest", r"newest"),
        "Top N: ORDER BY the measure (or the timestamp for 'latest') DESC, then LIMIT N; select every column "
        "the question names.",
    ),
)


def shape_hints(question: str) -> str:
    """The hints this question's wording calls for, as a short block, or "" when none applies."""
    found = [hint.advice for hint in HINTS if hint.pattern.search(question)]
    if not found:
        return ""
    return "\n".join([HEADER, *(f"- {advice}" for advice in found)])


def hint_names(question: str) -> tuple[str, ...]:
    """Which hints apply (for logs and tests)."""
    return tuple(hint.name for hint in HINTS if hint.pattern.search(question))

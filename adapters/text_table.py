"""Monospace result tables for chat platforms that have no table widget (Slack, Discord).

:func:`grid` lays out what :func:`core.display_table` chose to show (formatted values, numbers right-aligned);
every adapter shortens results by the same rules. :func:`text_table` is the raw layout approval previews use.
"""

from __future__ import annotations

from core import DisplayTable, ResultTable

MAX_CELL = 60
CODE_WIDTH = 60  # characters of a monospace grid: about what a phone shows before it wraps lines


def cut(text: str, limit: int) -> str:
    """Shorten to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(value: object) -> str:
    text = "NULL" if value is None else str(value)
    return cut(text.replace("\r", "").replace("\n", "⏎").replace("\t", " "), MAX_CELL)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def text_table(table: ResultTable, *, max_chars: int) -> tuple[str, int]:
    """Monospace, aligned table text within ``max_chars``; returns (text, rows shown)."""
    cells = [[_cell(v) for v in row] for row in table.rows[:500]]
    widths = [len(c) for c in table.columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    numeric = [all(_is_number(row[i]) for row in table.rows if row[i] is not None) for i in range(len(widths))]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=False)]
        return " | ".join(parts).rstrip()

    lines = [line(list(table.columns)), "-+-".join("-" * w for w in widths)]
    used = sum(len(x) + 1 for x in lines)
    shown = 0
    for row in cells:
        text = line(row)
        if used + len(text) + 1 > max_chars:
            break
        lines.append(text)
        used += len(text) + 1
        shown += 1
    return "\n".join(lines)[:max_chars], shown


def grid(shown: DisplayTable) -> str:
    """Header, rule and rows of ``shown``, aligned; numbers on the right edge of their column."""
    widths = [len(c) for c in shown.columns]
    for row in shown.rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(values: tuple[str, ...]) -> str:
        parts = [v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, shown.right, strict=True)]
        return " | ".join(parts).rstrip()

    return "\n".join([line(shown.columns), "-+-".join("-" * w for w in widths), *(line(r) for r in shown.rows)])

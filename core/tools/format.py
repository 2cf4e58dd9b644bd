"""Turning results into compact text for the model (the user sees the full table separately)."""

from __future__ import annotations

from core.messages import ResultTable

MODEL_ROWS = 50
MODEL_CHARS = 6000


def table_for_model(table: ResultTable, *, max_rows: int = MODEL_ROWS, max_chars: int = MODEL_CHARS) -> str:
    """Tab-separated rows with a header; says how many rows exist and whether the cap cut them."""
    if not table.columns:
        return "The statement returned no columns."
    lines = ["\t".join(table.columns)]
    for row in table.rows[:max_rows]:
        lines.append("\t".join("NULL" if v is None else str(v).replace("\n", " ")[:200] for v in row))
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = text[:max_chars] + "\n…(output cut)"
    shown = min(len(table.rows), max_rows)
    note = f"\n({table.row_count} row{'s' if table.row_count != 1 else ''}"
    if table.truncated:
        note += f", cut at the cap of {table.row_cap}; more rows exist"
    if shown < table.row_count:
        note += f"; first {shown} shown to you"
    return text + note + ")"

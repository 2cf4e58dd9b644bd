"""Axis labels, units and titles from column names and the question.

Column names, titles and questions come from people, models and tables: they are cut short, stripped of
control characters and never parsed as markup (the renderer also switches off matplotlib's ``$…$`` math).
"""

from __future__ import annotations

import re

LABEL_CHARS = 60
TITLE_CHARS = 90

# A trailing name part that is a unit: ``revenue_usd`` → "Revenue (USD)", ``load_pct`` → "Load (%)".
UNITS = {
    "usd": "USD", "eur": "EUR", "gbp": "GBP", "jpy": "JPY", "chf": "CHF", "cad": "CAD", "aud": "AUD",
    "pct": "%", "percent": "%", "percentage": "%", "ms": "ms", "sec": "s", "secs": "s", "seconds": "s",
    "minutes": "min", "mins": "min", "hours": "h", "days": "days", "bytes": "bytes", "kb": "KB", "mb": "MB",
    "gb": "GB", "tb": "TB", "kg": "kg", "km": "km",
}
_PRONOUNS = {"it", "this", "that", "them", "these", "those", "the result", "the results"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")
_ASK = re.compile(
    r"^(?:(?:please|can you|could you|pgbot)[,\s]+)*"
    r"(?:(?:plot|chart|graph|draw|visuali[sz]e|show(?: me)?|make|give me|create)\s+)?"
    r"(?:(?:an?|the)\s+)?(?:(?:bar|line|scatter)\s+)?(?:(?:chart|graph|plot|diagram)s?\s+)?(?:(?:of|for|with)\s+)?",
    re.IGNORECASE,
)


def clean(text: str, *, limit: int) -> str:
    """One line of plain text at most ``limit`` characters long."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split_unit(name: str) -> tuple[str, str | None]:
    """(the name without its unit part, the unit) of a column name such as ``total_revenue_usd``."""
    parts = [p for p in re.split(r"[_\s]+", name.strip()) if p]
    if len(parts) > 1 and parts[-1].lower() in UNITS:
        return " ".join(parts[:-1]), UNITS[parts[-1].lower()]
    return " ".join(parts) or name, None


def axis_label(name: str) -> str:
    """``total_revenue_usd`` → "Total revenue (USD)"; an empty or odd name stays readable."""
    base, unit = split_unit(name)
    base = clean(base, limit=LABEL_CHARS) or "value"
    base = base[:1].upper() + base[1:]
    return f"{base} ({unit})" if unit else base


def unit_of(name: str) -> str | None:
    return split_unit(name)[1]


def title_from(question: str, *, fallback: str) -> str:
    """The chart's title: the question without "plot a bar chart of", else ``fallback`` ("Revenue by region")."""
    text = clean(question, limit=400).rstrip("?!. ")
    text = _ASK.sub("", text, count=1).strip()
    if not text or _ASK.fullmatch(text + " ") or text.lower() in _PRONOUNS:  # "plot it", "a chart"
        return clean(fallback, limit=TITLE_CHARS)
    return clean(text[:1].upper() + text[1:], limit=TITLE_CHARS)

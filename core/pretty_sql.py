"""SQL laid out for people: pglast's prettifier (the Postgres parser's own tree, printed back)."""

from __future__ import annotations

import pglast
from pglast.parser import ParseError

MAX_PRETTY_CHARS = 100_000  # beyond this, parsing for layout costs more than it helps


def pretty_sql(sql: str) -> str:
    """One statement per paragraph, clauses on their own lines; the text as written when pglast cannot
    print it (a syntax it does not know, or a statement too long to bother). Comments are dropped by the
    prettifier, so SQL with comments is shown as written."""
    text = sql.strip()
    if not text or len(text) > MAX_PRETTY_CHARS or "--" in text or "/*" in text:
        return text
    try:
        return str(pglast.prettify(text, safety_belt=True))
    except (ParseError, ValueError, NotImplementedError, RuntimeError, RecursionError):
        return text

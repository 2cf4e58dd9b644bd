"""Passwords inside SQL, masked in everything shown to people or the model: cards, thread history, the audit.

The statement that *runs* keeps its password: an approval hashes and executes the real text and only shows
the masked one (:mod:`core.approvals.decisions`). Masked, anywhere in a statement:

- the string after ``PASSWORD`` (``CREATE|ALTER ROLE|USER … [ENCRYPTED] PASSWORD '…'``, and ``OPTIONS
  (password '…')`` of servers and user mappings);
- in every string constant, the password of a connection string: ``password=…`` in a libpq conninfo and
  ``scheme://user:password@`` in a URI (``dblink_connect('…')``, ``CREATE SUBSCRIPTION … CONNECTION '…'``).

Bodies in dollar quotes (``DO``, functions) and plain literals (``EXECUTE '…'``) are masked the same way,
recursively; comments by the patterns for free text. Edits are made in place on the scanner's tokens, so
the rest of the text (layout, comments) is exactly what runs. Text that does not scan as SQL, and free text
such as a question, is masked by patterns.

Deliberate limit: a literal after the word ``password`` is masked wherever it stands, so a type named
``password`` could hide a string from the card; the card then says that a value is masked (core.approvals.decisions).
"""

from __future__ import annotations

import re

from pglast.parser import ParseError, scan

MASK = "********"
MAX_DEPTH = 4  # literals inside literals inside bodies: deeper text is masked by patterns only

_PASSWORD_WORDS = frozenset({"password", "sslpassword"})
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_STRINGS = frozenset({"SCONST", "USCONST"})

# A string constant as Postgres spells it (E'…' with backslash escapes, U&'…', '…'), and several of them
# separated by whitespace holding a newline (comments allowed), which Postgres joins into one.
_LITERAL = r"(?:[eE]'(?:[^'\\]|''|\\.)*'|(?:[uU]&)?'(?:[^']|'')*')"
# Each comment ends at its newline, so no two ways to split the gap exist (no catastrophic backtracking).
_CONTINUED = rf"{_LITERAL}(?:[ \t\f\r]*(?:--[^\n]*)?\n(?:\s|--[^\n]*\n)*{_LITERAL})*"
_PASSWORD_CLAUSE = re.compile(  # the dollar tag's group always matches (maybe empty), so $$…$$ is masked too
    rf"(\b(?:ssl)?password\s+)({_CONTINUED}|\$((?:[A-Za-z_]\w*)?)\$.*?\$\3\$)", re.IGNORECASE | re.DOTALL
)
_CONNINFO_PASSWORD = re.compile(r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'&;]+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s']*:)[^@\s/']+(@)")


def mask_text(text: str) -> str:
    """Free text (a question, the model's prose, SQL that does not scan): passwords masked by pattern."""
    text = _PASSWORD_CLAUSE.sub(rf"\g<1>'{MASK}'", text)
    return _mask_conninfo(text)


def _mask_conninfo(text: str) -> str:
    text = _CONNINFO_PASSWORD.sub(rf"\g<1>{MASK}", text)
    return _URI_PASSWORD.sub(rf"\g<1>{MASK}\g<2>", text)


def _may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    return "password" in lowered or "://" in lowered


def mask_sql(sql: str) -> str:
    """``sql`` with every password masked (module docstring); unchanged when there is none."""
    return _mask(sql, depth=0)


def _mask(sql: str, *, depth: int) -> str:
    if not _may_hold_secret(sql):
        return sql
    if depth > MAX_DEPTH:
        return mask_text(sql)
    try:
        tokens = scan(sql)
    except ParseError:
        return mask_text(sql)
    pieces: list[str] = []
    done = 0
    previous = ""
    for token in tokens:
        text = sql[token.start:token.end + 1]
        if token.name in _COMMENTS:
            shown = mask_text(text)  # a comment is prose: patterns only, and it never precedes a literal
        elif token.name in _STRINGS:
            shown = f"'{MASK}'" if previous in _PASSWORD_WORDS else _mask_literal(text, depth=depth)
        else:
            shown = text
        if shown != text:
            pieces.append(sql[done:token.start])
            pieces.append(shown)
            done = token.end + 1
        if token.name not in _COMMENTS:
            previous = text.lower()
    pieces.append(sql[done:])
    return "".join(pieces)


def _mask_literal(literal: str, *, depth: int) -> str:
    """One string constant: its conninfo password, and whatever SQL it carries (a body, an EXECUTE)."""
    if not _may_hold_secret(literal):
        return literal
    if literal.startswith("$"):
        tag = literal[: literal.index("$", 1) + 1]
        body = literal[len(tag): len(literal) - len(tag)]
        return tag + _mask_conninfo(_mask(body, depth=depth + 1)) + tag
    if literal.startswith("'") and literal.endswith("'") and len(literal) >= 2:
        body = literal[1:-1].replace("''", "'")
        masked = _mask_conninfo(_mask(body, depth=depth + 1))
        return literal if masked == body else "'" + masked.replace("'", "''") + "'"
    return mask_text(literal)  # E'…' and U&'…': escapes make the body ambiguous, patterns are enough

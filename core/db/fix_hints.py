"""What the model is told when Postgres rejects its query, so that the next try fixes the cause.

A small model given only "column "total" does not exist" guesses another name, often the same one again;
on the quality bench a 1.5B model spent its retries repeating one planning error (docs/QUALITY.md). So a
failure comes back with three things a person fixing it would look at: the part of the statement Postgres
pointed at, the real columns of the tables the statement uses (read as the user's role, so nothing hidden
is revealed), and one line of advice for the common errors.
"""

from __future__ import annotations

import re

import asyncpg

from core.db.base import Connection, Database
from core.db.postgres import SQL_TAG
from core.errors import DatabaseError, QueryFailed

# SQLSTATEs where the columns of the tables in play are what the model needs to see.
_SHOW_COLUMNS = frozenset({
    "42703",  # undefined_column
    "42803",  # grouping_error
    "42702",  # ambiguous_column
    "42P01",  # undefined_table (an alias used before it is defined, a CTE name misspelt)
    "42883",  # undefined_function (often a wrong column type)
    "42804",  # datatype_mismatch
})
MAX_TABLES = 6
MAX_COLUMNS_CHARS = 1500

_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'relation "[^"]+" does not exist'),
     "Use a table from the schema in the prompt (list_tables lists them)."),
    (re.compile(r'column "[^"]+" does not exist'),
     "Use only the columns listed below; a column of another table needs a JOIN on its key."),
    (re.compile(r"must appear in the GROUP BY clause", re.IGNORECASE),
     "Every selected column must be in GROUP BY or inside an aggregate. A window over grouped rows wraps "
     "the aggregate: sum(count(*)) OVER (ORDER BY key). Or aggregate in a subquery first."),
    (re.compile(r"aggregate functions are not allowed in WHERE", re.IGNORECASE),
     "Filter on an aggregate with HAVING, or aggregate in a subquery and filter outside it."),
    (re.compile(r"window functions are not allowed in", re.IGNORECASE),
     "Compute the window in a subquery, then filter or group outside it."),
    (re.compile(r"aggregate function calls cannot contain window function calls", re.IGNORECASE),
     "Compute the window in a subquery, then aggregate outside it."),
    (re.compile(r"operator does not exist"),
     "Cast one side so both operands have the same type (e.g. ::text, ::numeric, ::date)."),
    (re.compile(r"is ambiguous"), "Qualify the column with its table alias."),
    (re.compile(r"function .* does not exist"),
     "Use a function this PostgreSQL version has, or cast the arguments to the types it takes."),
    (re.compile(r"missing FROM-clause entry", re.IGNORECASE),
     "Every alias you use must be defined in FROM or a JOIN of the same query level."),
    (re.compile(r"division by zero"), "Guard the divisor: x / NULLIF(y, 0)."),
    (re.compile(r"syntax error"), "Rewrite the statement near the point quoted; it must be one PostgreSQL SELECT."),
)

_COLUMNS_SQL = """
SELECT t.name, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n)
JOIN pg_attribute a ON a.attrelid = to_regclass(t.name) AND a.attnum > 0 AND NOT a.attisdropped
WHERE has_column_privilege(a.attrelid, a.attnum, 'SELECT')
GROUP BY t.name, t.n
ORDER BY t.n
"""


def retry_hint(message: str) -> str:
    """One short suggestion for a Postgres error message, or ""."""
    for pattern, hint in _HINTS:
        if pattern.search(message):
            return hint
    return ""


def error_position(exc: DatabaseError, sql: str, *, sent: str | None = None) -> int | None:
    """Where in ``sql`` Postgres pointed (1-based), also when it pointed into a text holding ``sql``: the
    error's own inner query (a DO block), else ``sent``, the statement as sent (with pgbot's tag)."""
    around = exc.query or sent
    if exc.position is None or around is None:
        return exc.position
    offset = around.find(sql)
    return exc.position - offset if offset >= 0 else None


def near(sql: str, position: int | None, *, width: int = 40) -> str:
    """The stretch of ``sql`` around Postgres's 1-based error position, on one line, or ""."""
    if position is None or not 1 <= position <= len(sql) + 1:
        return ""
    at = position - 1
    start, end = max(0, at - width // 2), min(len(sql), at + width)
    snippet = " ".join(sql[start:end].split())
    return ("…" if start else "") + snippet + ("…" if end < len(sql) else "")


async def table_columns(db: Database, *, role: str | None, tables: tuple[str, ...]) -> str:
    """``orders(id integer, …)`` lines for ``tables``, as ``role`` may see them, or "" (never fails a hint)."""
    if not tables:
        return ""
    names = list(tables[:MAX_TABLES])

    async def work(conn: Connection) -> list[asyncpg.Record]:
        return list(await conn.fetch(_COLUMNS_SQL, names))

    try:
        rows = await db.run(work, role=role, read_only=True, statement=_COLUMNS_SQL)
    except DatabaseError:
        return ""  # the hint is a help, not a requirement: the error itself still goes back
    text = "\n".join(f"{row[0]}({row[1]})" for row in rows)
    return text[:MAX_COLUMNS_CHARS]


async def query_failed(
    exc: DatabaseError, *, db: Database, role: str | None, sql: str, tables: tuple[str, ...], planning: bool,
) -> QueryFailed:
    """The :class:`QueryFailed` the model gets for ``exc``: the error, where, the columns in play, advice."""
    lead = ("Postgres rejected the query while planning it (EXPLAIN; nothing ran): " if planning
            else "Postgres error: ")
    lines = [lead + exc.user_message]
    where = near(sql, error_position(exc, sql, sent=None if planning else SQL_TAG + sql))
    if where:
        lines.append(f"Near: {where}")
    hint = retry_hint(exc.user_message)
    if hint:
        lines.append(hint)
    if exc.sqlstate in _SHOW_COLUMNS:
        columns = await table_columns(db, role=role, tables=tables)
        if columns:
            lines.append("Columns of the tables in this query:\n" + columns)
    lines.append(f"SQL was: {sql}")
    return QueryFailed("\n".join(lines))

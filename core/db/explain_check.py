"""EXPLAIN before running, and short hints that help the model fix a failed query.

Planning a query catches unknown tables and columns, type mismatches and ambiguous names without running
anything: a wrong guess against a large table costs milliseconds instead of a statement timeout. EXPLAIN
(without ANALYZE) never executes the statement; it still checks the role's privileges, so a permission
problem surfaces exactly as it would when running.
"""

from __future__ import annotations

import re

import asyncpg

from core.db.bounded_explain import explain_discarded
from core.db.postgres import PgDatabase
from core.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    GuardError,
    ModelHint,
    PermissionDeniedError,
    QueryFailed,
    QueryTimeoutError,
)
from core.sqlguard import Classification

# Statements EXPLAIN accepts on the read path (SELECT, WITH … SELECT, VALUES, TABLE all parse as SelectStmt).
EXPLAINABLE = frozenset({"SelectStmt"})

_RETRY_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'relation "[^"]+" does not exist'),
     "Check the table name against the schema in the prompt, or call list_tables."),
    (re.compile(r'column "[^"]+" does not exist'),
     "Call describe_table for the table to see its exact column names."),
    (re.compile(r"must appear in the GROUP BY clause"),
     "Every selected column that is not aggregated must be in GROUP BY."),
    (re.compile(r"operator does not exist"),
     "Cast one side so both operands have the same type (e.g. ::text, ::numeric, ::date)."),
    (re.compile(r"is ambiguous"), "Qualify the column with its table alias."),
    (re.compile(r"function .* does not exist"),
     "Use a function this PostgreSQL version has, or add explicit casts to the arguments."),
)


def retry_hint(message: str) -> str:
    """One short suggestion for a Postgres error message, or ""."""
    for pattern, hint in _RETRY_HINTS:
        if pattern.search(message):
            return hint
    return ""


async def explain_first(db: PgDatabase, *, role: str | None, checked: Classification) -> None:
    """Plan the read (as ``role``, read-only); a planning error becomes a :class:`QueryFailed` for a retry.

    Planning runs IMMUTABLE functions with constant arguments, so the catalog's function check runs first; their
    values can make the plan huge, so it is never fetched.
    """
    if checked.statement_type not in EXPLAINABLE:
        return
    sql = checked.sql

    async def work(conn: asyncpg.Connection) -> None:
        await explain_discarded(conn, f"EXPLAIN {sql}")  # the plan stays in the database, whatever its size

    try:
        await db.run(work, role=role, read_only=True, guarded=checked)
    except GuardError as exc:
        raise ModelHint(f"Refused: {exc.user_message}") from None
    except (PermissionDeniedError, QueryTimeoutError, DatabaseUnavailableError):
        raise  # the model cannot fix these: the user must see them as they are
    except DatabaseError as exc:
        hint = retry_hint(exc.user_message)
        raise QueryFailed(
            f"Postgres rejected the query while planning it (EXPLAIN; nothing ran): {exc.user_message}"
            + (f"\n{hint}" if hint else "") + f"\nSQL was: {sql}"
        ) from None

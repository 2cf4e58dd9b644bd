"""EXPLAIN before running: a planning error goes back to the model with what it needs to fix it.

Planning a query catches unknown tables and columns, type mismatches and ambiguous names without running
anything: a wrong guess against a large table costs milliseconds instead of a statement timeout. EXPLAIN
(without ANALYZE) never executes the statement; it still checks the role's privileges, so a permission
problem surfaces exactly as it would when running.
"""

from __future__ import annotations

from core.db.base import Database
from core.db.fix_hints import query_failed
from core.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    PermissionDeniedError,
    QueryTimeoutError,
    refused_as_hint,
)
from core.sqlguard import CheckedSql

# Statements EXPLAIN accepts on the read path (SELECT, WITH … SELECT, VALUES, TABLE all parse as SelectStmt).
EXPLAINABLE = frozenset({"SelectStmt"})


async def explain_first(db: Database, *, role: str | None, checked: CheckedSql) -> None:
    """Plan the read (as ``role``, read-only); a planning error becomes a :class:`QueryFailed` for a retry.

    Planning runs IMMUTABLE functions with constant arguments, so the catalog's function check runs first; their
    values can make the plan huge, so it is never fetched (:meth:`Database.plan`).
    """
    if checked.statement_type not in EXPLAINABLE:
        return
    try:
        with refused_as_hint():  # a function the catalog check refused
            await db.plan(checked, role=role)
    except (PermissionDeniedError, QueryTimeoutError, DatabaseUnavailableError):
        raise  # the model cannot fix these: the user must see them as they are
    except DatabaseError as exc:
        raise await query_failed(exc, db=db, role=role, sql=checked.sql, tables=checked.tables,
                                 planning=True) from None

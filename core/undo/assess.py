"""Before approval: can this change be undone? Decided by trying, rolled back, exactly what approval will run.

The proposal already ran the change rolled back (core.db.preview); this runs it once more the way an
approved run keeps rows (:func:`core.undo.capture.run_change`: the key, the rows first for an UPDATE,
RETURNING), again as the requester's role and rolled back, so the card can say before anyone approves
that the change cannot be undone and why: no key, over ``[undo] max_rows`` or ``max_bytes``, a cascade,
a statement kind undo does not cover. Skipped when the preview's count is already over the bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from core.config import UndoSettings
from core.db.base import PostgresDatabase
from core.errors import PgbotError, SecurityError
from core.sqlguard import Classification
from core.undo.capture import Captured, run_change
from core.undo.statement import target_of


@dataclass(frozen=True, slots=True)
class UndoCheck:
    possible: bool
    reason: str = ""  # why not, for the card ("" when possible, or when undo does not apply: DDL, off)
    rows: int = 0
    triggers: tuple[str, ...] = ()  # the table's triggers: they ran with the change and run again with its undo


async def assess(db: PostgresDatabase, checked: Classification, *, role: str | None, rows: int | None,
                 settings: UndoSettings) -> UndoCheck:
    if not settings.enabled or checked.kind != "write":
        return UndoCheck(possible=False)
    target = target_of(checked.sql)
    if isinstance(target, str):
        return UndoCheck(possible=False, reason=target)
    if rows is not None and rows > settings.max_rows:
        return UndoCheck(possible=False, reason=f"it would change {rows} rows, over the {settings.max_rows} an "
                                                "undo keeps ([undo] max_rows)")

    async def attempt(conn: asyncpg.Connection) -> Captured:
        return await run_change(conn, checked.sql, db=db, bounds=settings)

    try:
        captured = await db.run(attempt, role=role, read_only=False, rollback=True, statement=checked.sql)
    except SecurityError:
        raise
    except PgbotError as exc:
        return UndoCheck(possible=False, reason=f"pgbot could not try keeping its rows ({exc.user_message})")
    if captured.images is None:
        return UndoCheck(possible=False, reason=captured.why_not)
    return UndoCheck(possible=True, rows=len(captured.images.keys), triggers=captured.images.facts.triggers)


def hours_text(seconds: int) -> str:
    """``24 h``, ``90 min``: how long an undo stays possible."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{max(seconds // 60, 1)} min"

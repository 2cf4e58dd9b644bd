"""The approvals side of undo: run an approved change keeping its rows, save them with it, say so after.

:mod:`core.approvals.decisions` calls only this module: :func:`prepare_undo` before the change's transaction (the
table ``pgbot.undo`` is created as the login role, outside it), then ``run`` and ``save`` inside it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import structlog

from core.approvals.pending import SQL_OPERATION
from core.config import UndoSettings
from core.db.base import PostgresDatabase
from core.db.postgres import SQL_TAG
from core.errors import PgbotError
from core.undo import store
from core.undo.capture import Captured, run_change

if TYPE_CHECKING:
    from core.approvals.pending import PendingAction

log = structlog.get_logger(__name__)

UNDO_OPERATION = "undo"
REQUESTER_ROLE = "requester_role"  # an undo's params: the role its requester maps to ("" for the login role)


def requester_role(action: PendingAction) -> str | None:
    """The role the requester must still map to at approval. An undo runs as the original change's role,
    which need not be its requester's own."""
    if action.operation == UNDO_OPERATION:
        return action.params.get(REQUESTER_ROLE) or None
    return action.role


@dataclass(slots=True)
class UndoRun:
    db: PostgresDatabase
    action: PendingAction
    settings: UndoSettings
    keeps: bool  # a row goes into pgbot.undo (the rows, or why there are none)

    async def run(self, conn: asyncpg.Connection) -> Captured:
        if self.keeps and self.action.undo:
            return await run_change(conn, self.action.sql, db=self.db, bounds=self.settings)
        status: str = await conn.execute(SQL_TAG + self.action.sql)
        return Captured(status=status, images=None, why_not=self.action.undo_blocked if self.keeps else "")

    async def save(self, conn: asyncpg.Connection, kept: Captured) -> None:
        if not self.keeps:
            return
        action = self.action
        kind = kept.images.kind if kept.images else action.statement_type.removesuffix("Stmt").lower()
        await store.save(conn, action_id=action.id, database=action.database, thread_key=action.thread_key,
                         requested_by=action.requested_by, role=action.role, kind=kind, images=kept.images,
                         reason=kept.why_not, valid_for_s=self.settings.valid_for_s)


async def prepare_undo(db: PostgresDatabase, action: PendingAction, settings: UndoSettings) -> UndoRun:
    """Whether this change gets a ``pgbot.undo`` row; a table pgbot cannot create costs the undo, not the change."""
    keeps = settings.enabled and action.kind == "write" and action.operation == SQL_OPERATION
    if keeps:
        try:
            await store.ensure(db)
        except PgbotError as exc:
            log.warning("undo_table_unavailable", database=db.name, error=exc.user_message)
            keeps = False
    return UndoRun(db=db, action=action, settings=settings, keeps=keeps)


def undo_line(kept: Captured | None, action: PendingAction, *, valid_for_s: int) -> str:
    """The outcome's last line: until when it can be undone, or why it cannot."""
    if kept is None:
        return ""
    if kept.images is not None:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=valid_for_s)
        rows = len(kept.images.keys)
        return (f"Undo: pgbot kept the {rows} row{'s' if rows != 1 else ''} it changed, as they were, until "
                f"{until:%Y-%m-%d %H:%M} UTC: press Undo (or send /undo {action.id}).")
    return f"This change cannot be undone: {kept.why_not}." if kept.why_not else ""

"""An approved undo runs: the kept rows put back, as the original change's role, in one transaction.

Registered as the executor of the ``undo`` operation (core.approvals.executors), so
:class:`core.approvals.decisions.Approvals`
has already checked the approver, the hash (which pins the kept rows through ``UndoRecord.digest``) and
the claim. Here: the rows are still the ones shown, the change was not undone meanwhile and its undo has
not expired; ``pgbot.undo`` records the undo in the same transaction, so one change is undone at most once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import asyncpg

from core.approvals.executors import ExecutionContext, ExecutionOutcome, executor
from core.errors import PgbotError
from core.undo import store
from core.undo.inverse import Applied, apply
from core.undo.keep import UNDO_OPERATION
from core.undo.wording import skipped_lines, why_not_now

if TYPE_CHECKING:
    from core.approvals.pending import PendingAction


@executor(UNDO_OPERATION)
async def run_undo(action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome:
    """Put back the rows of the change ``action.params["of"]`` that are still as it left them."""
    of = action.params.get("of", "")
    db = ctx.database
    record = await store.load(db, of)
    if record is None:
        raise PgbotError(f"pgbot no longer keeps the rows of change {of}; nothing was run.")
    refusal = why_not_now(record)
    if refusal:
        raise PgbotError(refusal + " Nothing was run.")
    if record.digest() != action.params.get("rows") or record.role != action.role:
        raise PgbotError(f"The kept rows of change {of} are not the ones this undo showed; nothing was run.")
    started = time.perf_counter()

    async def work(conn: asyncpg.Connection) -> Applied:
        applied = await apply(conn, record)
        await db.verify_identity(conn, role=record.role, sql=action.sql, main_login=True)  # before RESET ROLE
        await conn.execute("RESET ROLE")  # pgbot.undo belongs to the login role
        if not await store.mark_undone(conn, of, undo_action_id=action.id, by=ctx.decided_by):
            raise PgbotError(f"Change {of} was undone already, or its undo expired meanwhile; nothing was run.")
        return applied

    applied = await db.run(work, role=record.role, read_only=False, limits=db.change_limits, verify=False,
                           main_login=True, statement=action.sql)
    total = len(record.keys)
    return ExecutionOutcome(
        status=f"put back {applied.restored} of {total} row{'s' if total != 1 else ''} of {record.qualified}",
        duration_ms=(time.perf_counter() - started) * 1000, rows_affected=applied.restored,
        details=skipped_lines(applied),
    )



"""The write path: propose one change, preview it (rolled back), and pause for approval.

Nothing here runs a change for real. The tool returns a :class:`PendingAction`; the agent stores it and
shows Approve/Reject; :class:`core.approvals.decisions.Approvals` runs it once someone allowed to approves.
"""

from __future__ import annotations

import time
from dataclasses import replace

from core.approvals.decisions import role_label
from core.approvals.pending import PendingAction, sql_hash
from core.db.preview import LOCK_EFFECT, SAMPLE_ROWS, ChangePreview, preview_change
from core.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    ModelHint,
    PermissionDeniedError,
    QueryTimeoutError,
    refused_as_hint,
)
from core.sqlguard import Classification, must_run_outside_transaction
from core.tools.format import table_for_model
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool
from core.undo.assess import assess, hours_text
from core.undo.execute import run_undo  # noqa: F401 - registers the "undo" executor with the tools' registry

PREVIEW_FAILED = "The preview of this change failed, so it is not offered for approval."
# SQLSTATE classes the model can fix by rewriting the SQL: data exceptions (22) and syntax/unknown names (42).
_FIXABLE_CLASSES = ("22", "42")


@tool(kind=ToolKind.WRITE)
async def propose_change(ctx: ToolContext, sql: str) -> ToolOutput:
    """Propose one INSERT, UPDATE, DELETE, MERGE, DDL or admin statement. Nothing runs until a person approves it.

    Args:
        sql: one statement that changes data or schema
    """
    with refused_as_hint():
        checked = ctx.guard.check_change(sql)
    if checked.statement_type == "CopyStmt":
        raise ModelHint("Refused: COPY ... FROM STDIN needs a data stream chat cannot supply; use INSERT.")
    db = ctx.postgres()
    try:
        preview = await preview_change(db, checked, role=ctx.actor.role)
    except (PermissionDeniedError, QueryTimeoutError, DatabaseUnavailableError) as exc:
        raise type(exc)(f"{PREVIEW_FAILED} {exc.user_message}") from exc
    except DatabaseError as exc:
        if _model_can_fix(exc):
            raise ModelHint(f"Postgres refused the statement in the preview: {exc.user_message}\n"
                            f"SQL was: {checked.sql}") from None
        raise DatabaseError(f"{PREVIEW_FAILED} {exc.user_message}") from exc
    undo = await assess(db, checked, role=ctx.actor.role, rows=preview.rows_affected,
                        settings=ctx.settings.undo)
    now = time.time()
    undo_text = ""  # for the approver on the card and for the model alike
    if undo.possible:
        undo_text = (f"Undo: once it runs, pgbot keeps the rows it changes, as they were, and offers an Undo "
                     f"for {hours_text(ctx.settings.undo.valid_for_s)}.")
        if undo.triggers:
            undo_text += (f" Triggers on the table ({', '.join(undo.triggers)}) run again with an undo; what they "
                          "did elsewhere is not undone.")
    action = PendingAction(
        database=ctx.database.name, thread_key=ctx.thread_key, requested_by=ctx.actor.identity,
        role=ctx.actor.role, requester_groups=ctx.actor.groups, sql=checked.sql,
        sql_hash=sql_hash(checked.sql), kind=checked.kind.value,
        statement_type=checked.statement_type, summary=short_summary(checked, preview),
        preview=preview.sample, before=preview.before, tables=checked.tables, lock=checked.lock,
        outside_transaction=must_run_outside_transaction(checked), rows_affected=preview.rows_affected,
        key_columns=preview.keys, set_columns=preview.set_columns,
        details=tuple(describe(checked, preview, role=ctx.actor.role, database=ctx.database.name,
                               rows=False).splitlines()) + ((undo_text,) if undo_text else ()),
        created_at=now, expires_at=now + ctx.settings.approvals.expiry_s,
        undo=undo.possible, undo_blocked=undo.reason,
    )
    text = describe(checked, preview, role=ctx.actor.role, database=ctx.database.name)
    if undo_text:
        text += f"\n{undo_text}"
    text += f"\nNothing has run yet: change {action.id} waits for Approve or Reject."
    ctx.log.info("change_proposed", action_id=action.id, statement=checked.statement_type,
                 rows=preview.rows_affected, sql_hash=action.sql_hash)
    return ToolOutput(text=text, sql=(), pause=action)


def _model_can_fix(exc: DatabaseError) -> bool:
    state = getattr(exc.__cause__, "sqlstate", None)
    return isinstance(state, str) and state[:2] in _FIXABLE_CLASSES


def _label(checked: Classification) -> str:
    return checked.statement_type.removesuffix("Stmt").upper()


def short_summary(checked: Classification, preview: ChangePreview) -> str:
    """One line for the approval card: what, how much, where."""
    where = f" on {', '.join(checked.tables[:3])}" if checked.tables else ""
    if preview.rows_affected is not None:
        amount = f": {preview.rows_affected} row{'s' if preview.rows_affected != 1 else ''}"
    else:
        amount = ""
    return f"{_label(checked)}{amount}{where}"


def describe(
    checked: Classification, preview: ChangePreview, *, role: str | None, database: str, rows: bool = True
) -> str:
    """The preview in words: with ``rows`` (the model's text) the rows before and after as text; without, for
    people, whose card shows the before → after diff instead (core.cards)."""
    objects = ", ".join(checked.tables) or "no table"
    lines: list[str] = []
    if preview.ran:
        if preview.rows_affected is not None:
            plural = "s" if preview.rows_affected != 1 else ""
            lines.append(f"This {_label(checked)} on {objects} would affect {preview.rows_affected} row{plural} "
                         f"(tried as {role_label(role)} on '{database}' in a transaction that was rolled back).")
        else:
            lines.append(f"This statement on {objects} was tried as {role_label(role)} on '{database}' in a "
                         "transaction that was rolled back.")
        if rows and preview.before is not None and preview.before.rows:
            lines.append("Before (up to 5 matching rows now):\n" + table_for_model(
                replace(preview.before, rows=preview.before.rows[:SAMPLE_ROWS])))
        if rows and preview.sample is not None and preview.sample.rows:
            lines.append("After (up to 5 of the rows as the change leaves them):\n" + table_for_model(preview.sample))
    else:
        lines.append(f"This {_label(checked)} touches: {objects}. It will run as {role_label(role)} on "
                     f"'{database}'.")
    if checked.lock:
        effect = LOCK_EFFECT.get(checked.lock, "")
        lines.append(f"Lock: {checked.lock} on {objects}" + (f" ({effect})." if effect else "."))
    if must_run_outside_transaction(checked):
        lines.append("It cannot run inside a transaction, so it runs on its own; if it fails part-way it may "
                     "leave something to clean up (e.g. an invalid index).")
    lines.extend(preview.notes)
    return "\n".join(lines)

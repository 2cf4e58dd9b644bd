"""A proposed change as approvers see it, and the hashes that make "what was shown is what runs" checkable.

The rules that decide on it are in :mod:`core.approvals.decisions`; work that is not one SQL statement is
carried out by an executor (:mod:`core.approvals.executors`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from core.card_state import Approvers
from core.cards import approval_question, row_diff
from core.db.audit_rows import AuditEvent, AuditRecord
from core.messages import ApprovalPrompt, ResultTable
from core.sql_secrets import mask_sql

SQL_OPERATION = "sql"


def sql_hash(sql: str) -> str:
    """SHA-256 of the exact SQL text, hex: what the approver saw is what runs."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def action_hash(sql: str, operation: str = SQL_OPERATION, params: Mapping[str, str] | None = None) -> str:
    """The hash approvers' clicks are checked against: the SQL alone for plain statements (so it equals
    :func:`sql_hash`), else the SQL, the operation and its parameters, so none can be altered unseen."""
    if operation == SQL_OPERATION and not params:
        return sql_hash(sql)
    canonical = json.dumps({"sql": sql, "operation": operation, "params": dict(params or {})}, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def new_action_id() -> str:
    """Unguessable: a click can only name an action someone was shown."""
    return secrets.token_urlsafe(16)


class PendingAction(BaseModel):
    """One proposed change, exactly as shown to approvers."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_action_id)
    database: str
    thread_key: str
    requested_by: str
    role: str | None  # None: the bot's login role (no roles table configured)
    # The requester's platform groups when they asked: approval re-resolves their role with them (rule 5).
    requester_groups: tuple[str, ...] = ()
    sql: str
    sql_hash: str
    kind: str  # write / ddl / admin
    statement_type: str = ""
    summary: str
    preview: ResultTable | None = None
    before: ResultTable | None = None
    tables: tuple[str, ...] = ()
    lock: str | None = None
    outside_transaction: bool = False  # VACUUM, CREATE INDEX CONCURRENTLY, ...: cannot run in a transaction
    operation: str = SQL_OPERATION  # anything else is run by the executor registered for it (core.approvals.executors)
    params: dict[str, str] = Field(default_factory=dict)  # the operation's inputs (file names, targets)
    # core.undo: keep the rows it changes for an Undo, or why it cannot be undone (said on the card). Not
    # hashed: either way the statement that runs is the approved one (plus RETURNING when rows are kept).
    undo: bool = False
    undo_blocked: str = ""
    # For the card (core.cards): rows the preview touched, how to pair before/after rows, the change in words.
    rows_affected: int | None = None
    key_columns: tuple[str, ...] = ()
    set_columns: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    created_at: float
    expires_at: float

    def expected_hash(self) -> str:
        return action_hash(self.sql, self.operation, self.params)

    @property
    def shown_sql(self) -> str:
        """The statement as people and the model see it: passwords masked. ``sql`` (and the hash, which covers
        it) stays the real text, so what runs is exactly what was requested."""
        return mask_sql(self.sql)

    def prompt(self, *, notes: tuple[str, ...] = (), approvers: Approvers | None = None) -> ApprovalPrompt:
        diff = row_diff(self.before, self.preview, keys=self.key_columns, set_columns=self.set_columns,
                        rows_affected=self.rows_affected)
        question = approval_question(statement_type=self.statement_type, rows=self.rows_affected, tables=self.tables,
                                     database=self.database, summary=self.summary,
                                     plain_sql=self.operation == SQL_OPERATION)
        return ApprovalPrompt(
            action_id=self.id, database=self.database, role=self.role, requested_by=self.requested_by,
            sql=self.shown_sql, sql_hash=self.sql_hash, kind=self.kind, summary=self.summary, preview=self.preview,
            expires_at=self.expires_at, notes=notes, question=question,
            diff=diff.lines if diff is not None else (), diff_note=diff.note if diff is not None else "",
            details=self.details, approvers=approvers or Approvers(),
        )

    def audit(self, event: AuditEvent, **outcome: object) -> AuditRecord:
        return AuditRecord(
            event=event, action_id=self.id, database=self.database, requested_by=self.requested_by,
            role=self.role, sql=self.sql, sql_hash=self.sql_hash, statement_type=self.statement_type,
            **outcome,  # type: ignore[arg-type]
        )

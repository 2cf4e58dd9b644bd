"""Rows of ``pgbot.audit``: what one row says, the table, and the one INSERT, below every writer.

:class:`core.db.postgres.PgDatabase` writes a ``security`` row itself when a statement changed the session's
identity, so the writer sits here, typed against :class:`AuditedDatabase` rather than ``PgDatabase``.
:class:`core.approvals.audit.AuditLog` builds on it (and reads the rows back).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import LiteralString, Protocol

import asyncpg
import structlog

from core.db.owned import LoginRunner, ensure_owned_table
from core.messages import new_id
from core.sql_secrets import mask_sql

log = structlog.get_logger(__name__)

TABLE = "pgbot.audit"
_CREATE: LiteralString = """
CREATE SCHEMA IF NOT EXISTS pgbot;
CREATE TABLE IF NOT EXISTS pgbot.audit (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    event         text NOT NULL,
    action_id     text NOT NULL,
    database      text NOT NULL,
    requested_by  text NOT NULL,
    decided_by    text,
    role          text,
    sql           text NOT NULL,
    sql_hash      text NOT NULL,
    result        text,
    rows_affected bigint,
    duration_ms   double precision
);
CREATE INDEX IF NOT EXISTS audit_action_idx ON pgbot.audit (action_id);
CREATE INDEX IF NOT EXISTS audit_at_idx ON pgbot.audit (at);
"""
_INSERT: LiteralString = (
    "INSERT INTO pgbot.audit (event, action_id, database, requested_by, decided_by, role, sql, sql_hash, result,"
    " rows_affected, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)


class AuditedDatabase(LoginRunner, Protocol):
    """A database the audit writes to: its name (the row's ``database``) and work as the login role."""

    name: str


class AuditEvent(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"
    EXECUTED = "executed"
    SECURITY = "security"  # a statement changed the session's identity: result discarded, connection closed
    # Schedules (core.schedules): action_id is the schedule id, requested_by its creator, decided_by who acted.
    SCHEDULE_CREATED = "schedule_created"
    SCHEDULE_PAUSED = "schedule_paused"
    SCHEDULE_RESUMED = "schedule_resumed"
    SCHEDULE_DELETED = "schedule_deleted"
    SCHEDULE_RAN = "schedule_ran"
    SCHEDULE_FAILED = "schedule_failed"
    SCHEDULE_STOPPED = "schedule_stopped"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    event: AuditEvent
    action_id: str
    database: str
    requested_by: str
    role: str | None
    sql: str
    sql_hash: str
    statement_type: str = ""
    decided_by: str | None = None
    result: str | None = None
    rows_affected: int | None = None
    duration_ms: float | None = None

    @property
    def safe_sql(self) -> str:
        return mask_sql(self.sql)

    def args(self) -> tuple[object, ...]:
        return (self.event.value, self.action_id, self.database, self.requested_by, self.decided_by, self.role,
                self.safe_sql, self.sql_hash, self.result, self.rows_affected, self.duration_ms)


async def ensure_table(db: LoginRunner) -> None:
    """Create schema ``pgbot`` and the table unless it exists (core.db.owned: as the login role, under a lock)."""
    await ensure_owned_table(db, TABLE, _CREATE)


async def insert(conn: asyncpg.Connection, entry: AuditRecord) -> None:
    """One row on a connection the caller holds (so it commits with the change it describes)."""
    await conn.execute(_INSERT, *entry.args())


async def write(db: LoginRunner, entry: AuditRecord) -> None:
    """One row in a transaction of its own, as the login role; the table exists (:func:`ensure_table`)."""

    async def work(conn: asyncpg.Connection) -> None:
        await insert(conn, entry)

    await db.run(work, role=None, read_only=False)


async def record_security_event(db: AuditedDatabase, *, role: str | None, found: str, sql: str, what: str) -> None:
    """One ``security`` row: who the session became (``result``) and the statement that did it (``sql``).

    ``requested_by`` carries the turn's request id (the log lines of the same turn name the chat user).
    """
    request = structlog.contextvars.get_contextvars().get("request_id", "")
    entry = AuditRecord(
        event=AuditEvent.SECURITY, action_id=new_id(), database=db.name, requested_by=f"request:{request or '?'}",
        role=role, sql=sql[:20_000] or "(none)", sql_hash=hashlib.sha256(sql.encode()).hexdigest(),
        result=f"{what}: {found}"[:2000],
    )
    await ensure_table(db)
    await write(db, entry)
    log_entry(entry)


def log_entry(entry: AuditRecord) -> None:
    """The structured-log twin of a row (SQL redacted like the row's, and cut to a readable length)."""
    log.info(
        "audit", audit_event=entry.event.value, action_id=entry.action_id, database=entry.database,
        requested_by=entry.requested_by, decided_by=entry.decided_by, role=entry.role, sql=entry.safe_sql[:2000],
        sql_hash=entry.sql_hash, result=(entry.result or "")[:500], rows_affected=entry.rows_affected,
        duration_ms=None if entry.duration_ms is None else round(entry.duration_ms, 1),
    )

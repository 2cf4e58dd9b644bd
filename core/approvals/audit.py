"""The audit trail: every change requested, decided and run, in ``pgbot.audit`` and in the structured log.

The table lives in each target database, in schema ``pgbot``, created on first use by the bot's login role
(never under a user's role, so users cannot read or rewrite it unless an admin grants them that).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from dataclasses import dataclass
from typing import LiteralString

import asyncpg
import structlog

from core.db.base import Connection, Database
from core.db.owned import ensure_owned_table
from core.db.registry import DatabaseRegistry
from core.errors import PermissionDeniedError
from core.messages import new_id
from core.sql_secrets import mask_sql

log = structlog.get_logger(__name__)

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
_COLUMNS = ("id", "at", "event", "action_id", "database", "requested_by", "decided_by", "role", "sql",
            "sql_hash", "result", "rows_affected", "duration_ms")

# Statement types whose text is meant to carry a password or connection string (migrations refuse them).
SECRET_BEARING = frozenset({
    "CreateRoleStmt", "AlterRoleStmt", "CreateUserMappingStmt", "AlterUserMappingStmt",
    "CreateSubscriptionStmt", "AlterSubscriptionStmt", "CreateForeignServerStmt", "AlterForeignServerStmt",
})


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


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: dt.datetime
    event: str
    action_id: str
    database: str
    requested_by: str
    decided_by: str | None
    role: str | None
    sql: str
    sql_hash: str
    result: str | None
    rows_affected: int | None
    duration_ms: float | None

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in _COLUMNS}


class AuditLog:
    """Writes and reads ``pgbot.audit`` in the configured databases."""

    def __init__(self, databases: DatabaseRegistry) -> None:
        self._databases = databases
        self._ready: set[str] = set()

    async def ensure(self, db: Database) -> None:
        """Create the schema and table once per process; an advisory lock serialises racing replicas."""
        if db.name in self._ready:
            return
        try:
            await ensure_owned_table(db, "pgbot.audit", _CREATE)
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                f"pgbot cannot create its audit table pgbot.audit on '{db.name}', so it will not offer changes "
                f"there: {exc.user_message}. Let its login role create it (GRANT CREATE ON DATABASE ... TO "
                "<login role>) or create schema pgbot owned by that role."
            ) from exc
        self._ready.add(db.name)

    async def record(self, entry: AuditRecord) -> None:
        """Write one row (as the login role) and one structured log line."""
        db = self._databases.get(entry.database)
        await self.ensure(db)

        async def work(conn: Connection) -> None:
            await conn.execute(_INSERT, *entry.args())

        await db.run(work, role=None, read_only=False)
        log_entry(entry)

    async def insert_on(self, conn: asyncpg.Connection, entry: AuditRecord) -> None:
        """Write a row on a connection the caller holds, so it commits with the change it describes.

        The caller logs it (:func:`log_entry`) once the transaction has committed.
        """
        await conn.execute(_INSERT, *entry.args())

    async def requested(self, *, database: str, action_id: str) -> AuditRow | None:
        """The ``requested`` row of an action: the record of what was shown, kept outside Redis."""
        db = self._databases.get(database)
        await self.ensure(db)

        async def work(conn: Connection) -> asyncpg.Record | None:
            row: asyncpg.Record | None = await conn.fetchrow(
                "SELECT * FROM pgbot.audit WHERE action_id = $1 AND event = 'requested' ORDER BY id LIMIT 1",
                action_id,
            )
            return row

        row = await db.run(work, role=None, read_only=True)
        return _row(row) if row is not None else None

    async def rows(
        self, *, database: str, since: dt.datetime | None = None, limit: int = 100, action_id: str | None = None
    ) -> list[AuditRow]:
        """Newest first; an absent table means no rows (reading never creates it)."""
        db = self._databases.get(database)

        async def work(conn: Connection) -> list[asyncpg.Record]:
            if await conn.fetchval("SELECT to_regclass('pgbot.audit')") is None:
                return []
            found: list[asyncpg.Record] = await conn.fetch(
                "SELECT * FROM pgbot.audit WHERE ($1::timestamptz IS NULL OR at >= $1)"
                " AND ($2::text IS NULL OR action_id = $2) ORDER BY at DESC, id DESC LIMIT $3",
                since, action_id, limit,
            )
            return found

        return [_row(r) for r in await db.run(work, role=None, read_only=True)]


async def record_security_event(db: Database, *, role: str | None, found: str, sql: str, what: str) -> None:
    """One ``security`` row: who the session became (``result``) and the statement that did it (``sql``).

    ``requested_by`` carries the turn's request id (the log lines of the same turn name the chat user).
    """
    request = structlog.contextvars.get_contextvars().get("request_id", "")
    entry = AuditRecord(
        event=AuditEvent.SECURITY, action_id=new_id(), database=db.name, requested_by=f"request:{request or '?'}",
        role=role, sql=sql[:20_000] or "(none)", sql_hash=hashlib.sha256(sql.encode()).hexdigest(),
        result=f"{what}: {found}"[:2000],
    )
    await ensure_owned_table(db, "pgbot.audit", _CREATE)

    async def work(conn: Connection) -> None:
        await conn.execute(_INSERT, *entry.args())

    await db.run(work, role=None, read_only=False)
    log_entry(entry)


def _row(record: asyncpg.Record) -> AuditRow:
    return AuditRow(**{name: record[name] for name in _COLUMNS})


def redact_sql(sql: str, *, statement_type: str = "") -> str:
    """What the audit stores and logs: passwords and connection-string secrets masked (core.sql_secrets, the
    same masker as cards and thread history); ``statement_type`` is kept for callers, the text decides."""
    return mask_sql(sql)


def log_entry(entry: AuditRecord) -> None:
    """The structured-log twin of a row (SQL redacted like the row's, and cut to a readable length)."""
    log.info(
        "audit", audit_event=entry.event.value, action_id=entry.action_id, database=entry.database,
        requested_by=entry.requested_by, decided_by=entry.decided_by, role=entry.role, sql=entry.safe_sql[:2000],
        sql_hash=entry.sql_hash, result=(entry.result or "")[:500], rows_affected=entry.rows_affected,
        duration_ms=None if entry.duration_ms is None else round(entry.duration_ms, 1),
    )

"""The audit trail: every change requested, decided and run, in ``pgbot.audit`` and in the structured log.

The table lives in each target database, in schema ``pgbot``, created on first use by the bot's login role
(never under a user's role, so users cannot read or rewrite it unless an admin grants them that). What a row
says and the one INSERT are in :mod:`core.db.audit_rows` (``PgDatabase`` writes security rows with it); here
the rows are written for the configured databases and read back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from core.db import audit_rows
from core.db.audit_rows import AuditRecord, log_entry
from core.db.base import Connection, Database
from core.db.registry import DatabaseRegistry
from core.errors import PermissionDeniedError
from core.sql_secrets import mask_sql

_COLUMNS = ("id", "at", "event", "action_id", "database", "requested_by", "decided_by", "role", "sql",
            "sql_hash", "result", "rows_affected", "duration_ms")

# Statement types whose text is meant to carry a password or connection string (migrations refuse them).
SECRET_BEARING = frozenset({
    "CreateRoleStmt", "AlterRoleStmt", "CreateUserMappingStmt", "AlterUserMappingStmt",
    "CreateSubscriptionStmt", "AlterSubscriptionStmt", "CreateForeignServerStmt", "AlterForeignServerStmt",
})


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
            await audit_rows.ensure_table(db)
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
        await audit_rows.write(db, entry)
        log_entry(entry)

    async def insert_on(self, conn: asyncpg.Connection, entry: AuditRecord) -> None:
        """Write a row on a connection the caller holds, so it commits with the change it describes.

        The caller logs it (:func:`log_entry`) once the transaction has committed.
        """
        await audit_rows.insert(conn, entry)

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


def _row(record: asyncpg.Record) -> AuditRow:
    return AuditRow(**{name: record[name] for name in _COLUMNS})


def redact_sql(sql: str, *, statement_type: str = "") -> str:
    """What the audit stores and logs: passwords and connection-string secrets masked (core.sql_secrets, the
    same masker as cards and thread history); ``statement_type`` is kept for callers, the text decides."""
    return mask_sql(sql)

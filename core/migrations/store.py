"""``pgbot.migrations``: which migrations ran on a database, with the checksum of the files that ran.

Owned by the bot's login role (like ``pgbot.audit``), written in the same transaction as the migration, so
a migration and its row commit or roll back together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import LiteralString

import asyncpg

from core.db.base import Connection, Database
from core.db.owned import ensure_owned_table
from core.errors import PermissionDeniedError

_CREATE: LiteralString = """
CREATE SCHEMA IF NOT EXISTS pgbot;
CREATE TABLE IF NOT EXISTS pgbot.migrations (
    version        bigint PRIMARY KEY,
    name           text NOT NULL,
    checksum       text NOT NULL,
    applied_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    applied_by     text NOT NULL,
    duration_ms    double precision,
    no_transaction boolean NOT NULL DEFAULT false
);
"""
# One migration at a time per database, whichever replica or command line runs it.
LOCK_KEY: LiteralString = "hashtext('pgbot.migrations')"


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: dt.datetime
    applied_by: str
    duration_ms: float | None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


async def ensure_table(db: Database) -> None:
    """Create the table as the login role (never a user's role); a clear error if that is not allowed."""
    try:
        await ensure_owned_table(db, "pgbot.migrations", _CREATE)
    except PermissionDeniedError as exc:
        raise PermissionDeniedError(
            f"pgbot cannot create its table pgbot.migrations on '{db.name}': {exc.user_message}. Let its login "
            "role create it (GRANT CREATE ON DATABASE ... TO <login role>) or create schema pgbot owned by it."
        ) from exc


async def applied(db: Database) -> list[AppliedMigration]:
    """Every recorded migration, oldest version first (empty when the table does not exist yet)."""

    async def work(conn: Connection) -> list[AppliedMigration]:
        if await conn.fetchval("SELECT to_regclass('pgbot.migrations')") is None:
            return []
        rows = await conn.fetch("SELECT version, name, checksum, applied_at, applied_by, duration_ms "
                                "FROM pgbot.migrations ORDER BY version")
        return [AppliedMigration(**dict(r)) for r in rows]

    return await db.run(work, role=None, read_only=True)


async def record_on(conn: asyncpg.Connection, *, version: int, name: str, checksum: str, applied_by: str,
                    duration_ms: float, no_transaction: bool) -> None:
    await conn.execute(
        "INSERT INTO pgbot.migrations (version, name, checksum, applied_by, duration_ms, no_transaction) "
        "VALUES ($1, $2, $3, $4, $5, $6)", version, name, checksum, applied_by, duration_ms, no_transaction)


async def is_recorded_on(conn: asyncpg.Connection, version: int) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pgbot.migrations WHERE version = $1)", version))


async def forget_on(conn: asyncpg.Connection, version: int) -> None:
    await conn.execute("DELETE FROM pgbot.migrations WHERE version = $1", version)


async def decisions(db: Database, action_ids: list[str]) -> dict[str, str]:
    """The last audit event of each action ("requested", "rejected", "expired", ...): what became of a draft."""
    if not action_ids:
        return {}

    async def work(conn: Connection) -> dict[str, str]:
        if await conn.fetchval("SELECT to_regclass('pgbot.audit')") is None:
            return {}
        rows = await conn.fetch("SELECT DISTINCT ON (action_id) action_id, event, decided_by FROM pgbot.audit "
                                "WHERE action_id = ANY($1::text[]) ORDER BY action_id, id DESC", action_ids)
        return {r["action_id"]: r["event"] + (f" by {r['decided_by']}" if r["decided_by"] else "") for r in rows}

    return await db.run(work, role=None, read_only=True)

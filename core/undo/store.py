"""``pgbot.undo``: the rows each approved change touched, kept in the database it changed, with an expiry.

Postgres, not Redis: the rows must survive restarts and outlive Redis's approval keys, and they commit in
the same transaction as the change they describe (written as the bot's login role, like the audit trail,
so users cannot read or rewrite them unless an admin grants that). A change that cannot be undone gets a
row too, with the reason and no rows, so ``/undo`` can say why. Rows are emptied once expired, and deleted a
week later. Two clicks on Undo are told apart here: the pending undo's id is set by compare-and-set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import LiteralString

import asyncpg

from core.db.base import Connection, Database
from core.db.owned import ensure_owned_table
from core.undo.capture import Images

TABLE = "pgbot.undo"
_CREATE: LiteralString = """
CREATE SCHEMA IF NOT EXISTS pgbot;
CREATE TABLE IF NOT EXISTS pgbot.undo (
    action_id      text PRIMARY KEY,
    database       text NOT NULL,
    thread_key     text NOT NULL,
    requested_by   text NOT NULL,
    role           text,
    kind           text NOT NULL,
    relation       oid,
    schema_name    text,
    table_name     text,
    key_columns    text[],
    columns        text[],
    generated      text[],
    keys           text[],
    before_rows    text[],
    after_rows     text[],
    bytes          bigint NOT NULL DEFAULT 0,
    reason         text,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    valid_until    timestamptz NOT NULL,
    undo_action_id text,
    undo_claimed_at timestamptz,
    undone_at      timestamptz,
    undone_by      text
);
CREATE INDEX IF NOT EXISTS undo_thread_idx ON pgbot.undo (thread_key, created_at);
CREATE INDEX IF NOT EXISTS undo_valid_idx ON pgbot.undo (valid_until);
"""
_INSERT: LiteralString = """
INSERT INTO pgbot.undo (action_id, database, thread_key, requested_by, role, kind, relation, schema_name,
    table_name, key_columns, columns, generated, keys, before_rows, after_rows, bytes, reason, valid_until)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
        clock_timestamp() + make_interval(secs => $18))
"""
_EXPIRE: LiteralString = """
UPDATE pgbot.undo SET before_rows = NULL, after_rows = NULL, keys = NULL
WHERE valid_until < clock_timestamp() AND keys IS NOT NULL;
DELETE FROM pgbot.undo WHERE valid_until < clock_timestamp() - interval '7 days';
"""
_COLUMNS = ("action_id", "database", "thread_key", "requested_by", "role", "kind", "relation", "schema_name",
            "table_name", "key_columns", "columns", "generated", "keys", "before_rows", "after_rows", "reason",
            "valid_until", "undo_action_id", "undo_claimed_at", "undone_at", "undone_by")


@dataclass(frozen=True, slots=True)
class UndoRecord:
    action_id: str
    database: str
    thread_key: str
    requested_by: str
    role: str | None  # the change's role: its undo runs as this role too
    kind: str  # insert / update / delete
    relation: int | None
    schema_name: str | None
    table_name: str | None
    key_columns: tuple[str, ...]
    columns: tuple[str, ...]
    generated: tuple[str, ...]
    keys: tuple[str, ...]
    before_rows: tuple[str | None, ...]
    after_rows: tuple[str | None, ...]
    reason: str | None  # why this change cannot be undone (then no rows are kept)
    valid_until: dt.datetime
    undo_action_id: str | None
    undo_claimed_at: dt.datetime | None
    undone_at: dt.datetime | None
    undone_by: str | None

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.table_name}"

    def digest(self) -> str:
        """Pins the rows an undo card showed: the undo runs only if the kept rows are still these."""
        payload = json.dumps([self.kind, self.relation, self.key_columns, self.columns, self.keys,
                              self.before_rows, self.after_rows])
        return hashlib.sha256(payload.encode()).hexdigest()


async def ensure(db: Database) -> None:
    await ensure_owned_table(db, TABLE, _CREATE)


async def save(conn: asyncpg.Connection, *, action_id: str, database: str, thread_key: str, requested_by: str,
               role: str | None, kind: str, images: Images | None, reason: str, valid_for_s: int) -> None:
    """One row on the change's own connection (as the login role), so it commits with the change."""
    facts = images.facts if images is not None else None
    await conn.execute(_EXPIRE)
    await conn.execute(
        _INSERT, action_id, database, thread_key, requested_by, role, kind,
        facts.oid if facts else None, facts.schema if facts else None, facts.table if facts else None,
        list(facts.key) if facts else None, list(facts.columns) if facts else None,
        list(facts.generated) if facts else None,
        list(images.keys) if images else None, list(images.before) if images else None,
        list(images.after) if images else None, images.size if images else 0,
        None if images is not None else (reason or "pgbot kept no rows for it"), float(valid_for_s),
    )


async def load(db: Database, action_id: str) -> UndoRecord | None:
    """The record of one change; reading never creates the table."""

    async def work(conn: Connection) -> asyncpg.Record | None:
        if await conn.fetchval("SELECT to_regclass('pgbot.undo')") is None:
            return None
        found: asyncpg.Record | None = await conn.fetchrow(
            f"SELECT {', '.join(_COLUMNS)} FROM pgbot.undo WHERE action_id = $1", action_id)
        return found

    row = await db.run(work, role=None, read_only=True)
    return _record(row) if row is not None else None


async def latest(db: Database, thread_key: str) -> str | None:
    """The newest change of a thread that kept its rows (what a bare ``/undo`` means)."""

    async def work(conn: Connection) -> str | None:
        if await conn.fetchval("SELECT to_regclass('pgbot.undo')") is None:
            return None
        found = await conn.fetchval("SELECT action_id FROM pgbot.undo WHERE thread_key = $1 AND keys IS NOT NULL "
                                    "ORDER BY created_at DESC LIMIT 1", thread_key)
        return str(found) if found is not None else None

    return await db.run(work, role=None, read_only=True)


async def claim(db: Database, action_id: str, *, new: str | None, expected: str | None) -> bool:
    """Compare-and-set the pending undo of a change: True when ``expected`` was still the one recorded."""

    async def work(conn: Connection) -> bool:
        done = await conn.fetchval(
            "UPDATE pgbot.undo SET undo_action_id = $2, undo_claimed_at = clock_timestamp() "
            "WHERE action_id = $1 AND undo_action_id IS NOT DISTINCT FROM $3 AND undone_at IS NULL RETURNING 1",
            action_id, new, expected)
        return done is not None

    return await db.run(work, role=None, read_only=False)


async def mark_undone(conn: asyncpg.Connection, action_id: str, *, undo_action_id: str, by: str) -> bool:
    """In the undo's own transaction: False when the change was undone already (the undo then rolls back)."""
    done = await conn.fetchval(
        "UPDATE pgbot.undo SET undone_at = clock_timestamp(), undone_by = $3, undo_action_id = $2 "
        "WHERE action_id = $1 AND undone_at IS NULL AND valid_until > clock_timestamp() RETURNING 1",
        action_id, undo_action_id, by)
    return done is not None


def _record(row: asyncpg.Record) -> UndoRecord:
    data = {name: row[name] for name in _COLUMNS}
    for name in ("key_columns", "columns", "generated", "keys", "before_rows", "after_rows"):
        data[name] = tuple(data[name] or ())
    if data["relation"] is not None:
        data["relation"] = int(data["relation"])
    return UndoRecord(**data)

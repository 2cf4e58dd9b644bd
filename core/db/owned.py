"""pgbot's own tables (schema ``pgbot``: audit, feedback, migrations), created on first use.

They are created as the bot's login role, never a user's role: people need no privileges on pgbot's schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import asyncpg

T = TypeVar("T")


class LoginRunner(Protocol):
    """What creating pgbot's tables needs of a database: work in a transaction as the login role.

    :class:`core.db.postgres.PgDatabase` is one; naming it here would tie this module to postgres.py, which
    writes audit rows (core.db.audit_rows) through this one.
    """

    async def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, role: str | None,
                  read_only: bool) -> T:
        ...


async def ensure_owned_table(db: LoginRunner, table: str, create_sql: str) -> None:
    """Run ``create_sql`` (idempotent DDL) unless ``table`` exists; replicas racing to create it are
    serialised by an advisory lock on the table's name. A table that already exists (perhaps made by an
    admin) needs no lock and no CREATE privilege. Postgres errors come out translated (PgbotError)."""

    async def work(conn: asyncpg.Connection) -> None:
        if await conn.fetchval("SELECT to_regclass($1)", table) is not None:
            return
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", table)
        if await conn.fetchval("SELECT to_regclass($1)", table) is None:  # another replica may have won
            await conn.execute(create_sql)

    await db.run(work, role=None, read_only=False)


async def ensure_owned_columns(db: LoginRunner, table: str, columns: tuple[str, ...], upgrade_sql: str) -> None:
    """Run ``upgrade_sql`` (``ADD COLUMN IF NOT EXISTS``) unless ``table`` already has every one of
    ``columns``: a table an older pgbot created gains the columns a newer one needs. Checked first without a
    lock (ALTER TABLE takes an ACCESS EXCLUSIVE lock even when it adds nothing), then under the same advisory
    lock as :func:`ensure_owned_table`, so replicas upgrading at once run it one at a time."""

    async def missing(conn: asyncpg.Connection) -> bool:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY($2::text[])"
            " AND attnum > 0 AND NOT attisdropped", table, list(columns))
        return found < len(columns)

    async def work(conn: asyncpg.Connection) -> None:
        if not await missing(conn):
            return
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", table)
        if await missing(conn):
            await conn.execute(upgrade_sql)

    await db.run(work, role=None, read_only=False)

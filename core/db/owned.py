"""pgbot's own tables (schema ``pgbot``: audit, feedback, migrations), created on first use.

They are created as the bot's login role, never a user's role: people need no privileges on pgbot's schema.
"""

from __future__ import annotations

from core.db.base import Connection, Database


async def ensure_owned_table(db: Database, table: str, create_sql: str) -> None:
    """Run ``create_sql`` (idempotent DDL) unless ``table`` exists; replicas racing to create it are
    serialised by an advisory lock on the table's name. A table that already exists (perhaps made by an
    admin) needs no lock and no CREATE privilege. Postgres errors come out translated (PgbotError)."""

    async def work(conn: Connection) -> None:
        if await conn.fetchval("SELECT to_regclass($1)", table) is not None:
            return
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", table)
        if await conn.fetchval("SELECT to_regclass($1)", table) is None:  # another replica may have won
            await conn.execute(create_sql)

    await db.run(work, role=None, read_only=False)


async def ensure_owned_columns(db: Database, table: str, columns: tuple[str, ...], upgrade_sql: str) -> None:
    """Run ``upgrade_sql`` (``ADD COLUMN IF NOT EXISTS``) unless ``table`` already has every one of
    ``columns``: a table an older pgbot created gains the columns a newer one needs. Checked first without a
    lock (ALTER TABLE takes an ACCESS EXCLUSIVE lock even when it adds nothing), then under the same advisory
    lock as :func:`ensure_owned_table`, so replicas upgrading at once run it one at a time."""

    async def missing(conn: Connection) -> bool:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY($2::text[])"
            " AND attnum > 0 AND NOT attisdropped", table, list(columns))
        return found < len(columns)

    async def work(conn: Connection) -> None:
        if not await missing(conn):
            return
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", table)
        if await missing(conn):
            await conn.execute(upgrade_sql)

    await db.run(work, role=None, read_only=False)

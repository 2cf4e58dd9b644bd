"""The demo shop database behind ``pgbot demo`` and the accuracy benchmark.

:func:`load_demo` creates the tables from ``schema.sql`` and copies in rows from :mod:`bot.demo.data`, all in
one transaction. A marker in the comment on schema ``public`` records the version and the (UTC) day of the
load: a load on the same day is a no-op, a later one reloads so relative dates ("last week") keep answers.
Tables of the same names that the demo did not create are never dropped.
"""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from bot.demo.data import build_rows
from core.errors import DatabaseError

__all__ = ["DEMO_TABLES", "DEMO_VERSION", "load_demo"]

DEMO_VERSION = 1
# Foreign-key order: parents first.
DEMO_TABLES: tuple[str, ...] = (
    "customers",
    "categories",
    "products",
    "orders",
    "order_items",
    "reviews",
    "employees",
    "support_tickets",
)
_SCHEMA_DESCRIPTION = (
    "pgbot demo shop: customers, products in categories, orders with their items, reviews, staff and "
    "support tickets. Amounts are USD."
)
_MARKER_RE = re.compile(r"\[pgbot-demo v(\d+) loaded (\d{4}-\d{2}-\d{2})\]")
_LOCK_KEY = 0x70676264  # "pgbd": serialises concurrent loaders of the same database


async def load_demo(conn: asyncpg.Connection, *, force: bool = False) -> None:
    """Create and fill the demo tables in schema ``public`` unless today's load is already there."""
    async with conn.transaction():
        await conn.execute("SET LOCAL search_path = public")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        today = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
        comment = await conn.fetchval("SELECT obj_description('public'::regnamespace, 'pg_namespace')")
        marker = _MARKER_RE.search(comment or "")
        if marker and not force and int(marker[1]) == DEMO_VERSION and marker[2] == today.isoformat():
            return
        if marker is None:
            await _refuse_foreign_tables(conn)
        await conn.execute("DROP TABLE IF EXISTS " + ", ".join(DEMO_TABLES) + " CASCADE")
        await conn.execute(resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8"))
        now = await conn.fetchval("SELECT now()")
        for table, content in build_rows(now=now).items():
            await conn.copy_records_to_table(
                table, records=content.rows, columns=content.columns, schema_name="public"
            )
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('public.{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM public.{table}), false)"
            )
        label = f"{_SCHEMA_DESCRIPTION} [pgbot-demo v{DEMO_VERSION} loaded {today.isoformat()}]"
        await conn.execute("COMMENT ON SCHEMA public IS " + _quote_literal(label))
    # After the commit, and once this session's counters reached the statistics (PostgreSQL 15+ flushes them
    # lazily): otherwise the loaded rows count as changes made after the ANALYZE and ``/health`` calls the
    # fresh tables stale.
    if conn.get_server_version().major >= 15:
        await conn.execute("SELECT pg_stat_force_next_flush()")
    await conn.execute("ANALYZE " + ", ".join(DEMO_TABLES))


async def _refuse_foreign_tables(conn: asyncpg.Connection) -> None:
    """Never drop someone's own ``orders`` table: without the marker, the demo tables must not exist."""
    clashes = await conn.fetch(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relname = ANY($1::text[]) ORDER BY c.relname",
        list(DEMO_TABLES),
    )
    if clashes:
        names = ", ".join(r["relname"] for r in clashes)
        raise DatabaseError(
            f"This database already has tables the demo did not create ({names}); "
            "load the demo into an empty database."
        )


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

"""Builders for the backup tests: a source database worth copying, per-table checksums, cleanup of restores."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg

from core import Settings
from tests.helpers import SHOP_SQL

# Odd names, NULLs, a partitioned table, a sequence in use, a view, a foreign key: what a copy must keep.
EXTRA_SQL = """
CREATE TABLE "Odd Name" (id serial PRIMARY KEY, "Mixed Case" text, payload jsonb, tags text[]);
INSERT INTO "Odd Name" ("Mixed Case", payload, tags)
  SELECT CASE WHEN g % 4 = 0 THEN NULL ELSE 'v' || g END, jsonb_build_object('g', g), ARRAY['a', 'b' || g]
  FROM generate_series(1, 40) g;
CREATE SCHEMA sales;
CREATE TABLE sales.events (id int, at date NOT NULL, amount numeric) PARTITION BY RANGE (at);
CREATE TABLE sales.events_2025 PARTITION OF sales.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE sales.events_2026 PARTITION OF sales.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO sales.events SELECT g, date '2025-06-01' + g, g / 3.0 FROM generate_series(1, 400) g;
CREATE VIEW shipped AS SELECT * FROM orders WHERE status = 'shipped';
CREATE TABLE empty_one (id int);
"""

CHECKSUMS = """
SELECT n.nspname || '.' || c.relname AS name, c.oid::regclass::text AS ident
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgbot')
ORDER BY 1
"""


async def seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SHOP_SQL + EXTRA_SQL)
    finally:
        await conn.close()


async def table_checksums(dsn: str) -> dict[str, tuple[int, str | None]]:
    """Every user table: (row count, md5 of its rows in a fixed order)."""
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[str, tuple[int, str | None]] = {}
        for row in await conn.fetch(CHECKSUMS):
            ident = row["ident"]
            count, digest = await conn.fetchrow(
                f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {ident} t")
            out[row["name"]] = (count, digest)
        return out
    finally:
        await conn.close()


def backup_settings(dsn: str, folder: Path, **backups: Any) -> Settings:
    return Settings(databases={"shop": {"dsn": dsn}},
                    backups={"dir": str(folder), "progress_interval_s": 0, **backups})


def new_name(prefix: str = "pgbot_restore") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def database_exists(admin_dsn: str, name: str) -> bool:
    conn = await asyncpg.connect(admin_dsn)
    try:
        return bool(await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def files_in(folder: Path, pattern: str = "*") -> list[Path]:
    """The files in ``folder`` matching ``pattern`` (sorted), for assertions in async tests."""
    return sorted(folder.glob(pattern))

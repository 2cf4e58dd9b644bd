"""The schema text the model sees for a question: a compact catalog, never a full dump.

One set-based query reads every visible column; the result is cached per (database, role) and refreshed
when the catalog changes (a cheap fingerprint of pg_class/pg_attribute is compared at most every few
seconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

from core.db.postgres import PgDatabase

CATALOG_SQL = """
SELECT n.nspname AS schema, c.relname AS name, obj_description(c.oid, 'pg_class') AS comment,
       string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS columns
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgbot')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  AND has_schema_privilege(n.oid, 'USAGE')
  AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
GROUP BY n.nspname, c.relname, c.oid
ORDER BY n.nspname, c.relname
"""

# Any DDL or COMMENT rewrites rows of these catalogs, so the newest xmin and the row counts change.
FINGERPRINT_SQL = """
SELECT concat_ws(':', (SELECT max(xmin::text::bigint) FROM pg_class), (SELECT count(*) FROM pg_class),
                 (SELECT max(xmin::text::bigint) FROM pg_attribute), (SELECT count(*) FROM pg_attribute),
                 (SELECT max(xmin::text::bigint) FROM pg_description))
"""


@dataclass(slots=True)
class _Entry:
    text: str
    fingerprint: str
    checked_at: float


class SchemaContext:
    """Builds and caches the compact catalog per database and role."""

    def __init__(self, *, max_chars: int = 12000, recheck_s: float = 5.0) -> None:
        self._cache: dict[tuple[str, str | None], _Entry] = {}
        self._max_chars = max_chars
        self._recheck_s = recheck_s

    async def for_question(self, db: PgDatabase, *, role: str | None, question: str) -> str:
        key = (db.name, role)
        entry = self._cache.get(key)
        now = time.monotonic()
        if entry and now - entry.checked_at < self._recheck_s:
            return entry.text

        async def work(conn: asyncpg.Connection) -> _Entry:
            fingerprint = str(await conn.fetchval(FINGERPRINT_SQL))
            if entry and entry.fingerprint == fingerprint:
                return _Entry(entry.text, fingerprint, now)
            rows = await conn.fetch(CATALOG_SQL)
            return _Entry(self._render(rows), fingerprint, now)

        fresh = await db.run(work, role=role, read_only=True)
        self._cache[key] = fresh
        return fresh.text

    def _render(self, rows: list[asyncpg.Record]) -> str:
        lines = []
        for r in rows:
            comment = f"  -- {r['comment'][:120]}" if r["comment"] else ""
            lines.append(f"{r['schema']}.{r['name']}({r['columns']}){comment}")
        text = "\n".join(lines)
        if len(text) <= self._max_chars:
            return text
        names = ", ".join(f"{r['schema']}.{r['name']}" for r in rows)
        return (names[: self._max_chars] + " …") + "\n(Large schema: use describe_table for columns.)"

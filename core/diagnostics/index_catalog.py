"""Catalog facts index advice and the health check share: tables, their indexes, unused and duplicate ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from core.diagnostics.findings import Finding, Severity, number, size


@dataclass(frozen=True, slots=True)
class ExistingIndex:
    name: str
    columns: tuple[str, ...]  # empty names for expression columns
    method: str
    partial: bool
    unique: bool
    definition: str

    def covers(self, columns: Sequence[str]) -> bool:
        """A plain b-tree whose leading columns are exactly ``columns`` already serves them."""
        return (self.method == "btree" and not self.partial and len(self.columns) >= len(columns)
                and tuple(self.columns[: len(columns)]) == tuple(columns))


@dataclass(frozen=True, slots=True)
class TableFacts:
    oid: int
    name: str  # schema.table
    rows: float
    pages: int
    columns: tuple[str, ...]
    indexes: tuple[ExistingIndex, ...]


async def table_facts(conn: asyncpg.Connection, relation: str) -> TableFacts | None:
    """Facts of a table as the query names it (search_path applies), or None if it is not a table."""
    row = await conn.fetchrow(
        "SELECT c.oid, n.nspname || '.' || c.relname AS name, greatest(c.reltuples, 0)::float8 AS rows, "
        "c.relpages FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'm')", relation)
    if row is None:
        return None
    columns = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        row["oid"])
    indexes = await conn.fetch(
        "SELECT ic.relname AS name, am.amname AS method, i.indpred IS NOT NULL AS partial, i.indisunique AS uniq, "
        "pg_get_indexdef(i.indexrelid) AS definition, "
        "ARRAY(SELECT coalesce(a.attname, '') FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
        "      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "      WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) AS columns "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam "
        "WHERE i.indrelid = $1 AND i.indisvalid", row["oid"])
    return TableFacts(
        oid=row["oid"], name=row["name"], rows=row["rows"], pages=row["relpages"],
        columns=tuple(r["attname"] for r in columns),
        indexes=tuple(ExistingIndex(name=r["name"], columns=tuple(r["columns"]), method=r["method"],
                                    partial=r["partial"], unique=r["uniq"], definition=r["definition"])
                      for r in indexes),
    )


_UNUSED_SQL = """
SELECT s.schemaname || '.' || s.relname AS tbl, s.schemaname || '.' || s.indexrelname AS idx,
       pg_relation_size(s.indexrelid)::float8 AS bytes, pg_get_indexdef(s.indexrelid) AS definition
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
  AND ($1::oid[] IS NULL OR s.relid = ANY($1::oid[]))
ORDER BY bytes DESC, idx LIMIT 50
"""

_DUPLICATE_SQL = """
SELECT n.nspname || '.' || t.relname AS tbl,
       array_agg(n.nspname || '.' || ic.relname ORDER BY ic.relname) AS indexes,
       sum(pg_relation_size(i.indexrelid))::float8 AS bytes,
       min(pg_get_indexdef(i.indexrelid)) AS definition
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND ($1::oid[] IS NULL OR i.indrelid = ANY($1::oid[]))
GROUP BY n.nspname, t.relname, i.indrelid, ic.relam, i.indkey::text, i.indclass::text, i.indcollation::text,
         coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_get_expr(i.indpred, i.indrelid), '')
HAVING count(*) > 1
ORDER BY bytes DESC LIMIT 20
"""


async def unused_and_duplicate(conn: asyncpg.Connection, *, tables: Sequence[int] | None = None) -> list[Finding]:
    """Indexes never scanned since statistics began (not unique, not backing a constraint) and exact twins."""
    findings: list[Finding] = []
    oids = list(tables) if tables is not None else None
    since = await conn.fetchval("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
    period = f"since statistics were reset on {since:%Y-%m-%d}" if since else "since statistics began on this server"
    unused = await conn.fetch(_UNUSED_SQL, oids)
    if unused:
        total = sum(r["bytes"] for r in unused)
        findings.append(Finding(
            Severity.WARNING if total >= 10 * 1024 * 1024 else Severity.INFO, "unused_index",
            f"{len(unused)} index{'es' if len(unused) != 1 else ''} never used {period} ({size(total)} in all)",
            details=tuple(f"{r['idx']} on {r['tbl']} ({size(r['bytes'])}): {r['definition']}" for r in unused),
            why="Every index slows down each INSERT and UPDATE on its table and takes disk and cache space.",
            action=("Check that no replica or monthly job uses it (the counters are per server), then "
                    "DROP INDEX CONCURRENTLY it."),
        ))
    else:
        findings.append(Finding(Severity.OK, "unused_index", "no unused indexes"))
    duplicates = await conn.fetch(_DUPLICATE_SQL, oids)
    if duplicates:
        findings.append(Finding(
            Severity.WARNING, "duplicate_index",
            f"{len(duplicates)} set{'s' if len(duplicates) != 1 else ''} of duplicate indexes "
            "(same table, columns, operator classes and condition)",
            details=tuple(f"{', '.join(r['indexes'])} on {r['tbl']} ({size(r['bytes'])} together)"
                          for r in duplicates),
            why="Identical indexes cost every write twice and help no query more than one of them.",
            action="Keep one of each set (the one a constraint uses, if any) and DROP INDEX CONCURRENTLY the others.",
        ))
    else:
        findings.append(Finding(Severity.OK, "duplicate_index", "no duplicate indexes"))
    return findings


def rows_text(rows: float) -> str:
    return f"~{number(rows)} rows"

"""Catalog facts index advice and the health check share: tables, their indexes, unused and duplicate ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from core.diagnostics.checks import LockView, run_isolated
from core.diagnostics.findings import Finding, Severity, number, size
from core.diagnostics.locks import Locks


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


# An index's definition: pg_get_indexdef() where it does not wait, else rebuilt from the catalog, which takes no
# lock (pg_get_indexdef opens the table: it waits behind an ACCESS EXCLUSIVE lock). $LOCKED: locked oids.
_DEFINITION = """
CASE WHEN i.indrelid = ANY($LOCKED::oid[]) OR i.indexrelid = ANY($LOCKED::oid[]) THEN
  'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(ic.relname)
  || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(t.relname) || ' USING ' || am.amname || ' ('
  || (SELECT string_agg(coalesce(quote_ident(a.attname), '(expression)'), ', ' ORDER BY k.ord)
      FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
      WHERE k.ord <= i.indnkeyatts) || ')'
  || CASE WHEN i.indpred IS NOT NULL THEN ' WHERE (condition not shown)' ELSE '' END
  || ' [from the catalog: locked]'
ELSE pg_get_indexdef(i.indexrelid) END
"""
# Size of an index: exact unless it is locked itself, then relpages (as of its last VACUUM/ANALYZE/build).
_INDEX_BYTES = """
CASE WHEN i.indexrelid = ANY($LOCKED::oid[]) THEN ic.relpages::float8 * current_setting('block_size')::float8
     ELSE pg_relation_size(i.indexrelid)::float8 END
"""
# Same expression or condition whatever the position it was written at (pg_get_expr would wait on a lock).
_NODE = "coalesce(regexp_replace({column}::text, ' :location -?[0-9]+', '', 'g'), '')"


def _with_locked(sql: str, param: int) -> str:
    return sql.replace("{definition}", _DEFINITION).replace("{index_bytes}", _INDEX_BYTES).replace(
        "$LOCKED", f"${param}")


async def table_facts(conn: asyncpg.Connection, relation: str, *, locks: Locks) -> TableFacts | None:
    """Facts of a table as the query names it (search_path applies), or None if it is not a table.
    Catalog reads only where a relation is locked, so this never waits."""
    row = await conn.fetchrow(
        "SELECT c.oid, n.nspname || '.' || c.relname AS name, greatest(c.reltuples, 0)::float8 AS rows, "
        "c.relpages FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'm')", relation)
    if row is None:
        return None
    columns = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        row["oid"])
    indexes = await conn.fetch(_with_locked(
        "SELECT ic.relname AS name, am.amname AS method, i.indpred IS NOT NULL AS partial, i.indisunique AS uniq, "
        "{definition} AS definition, "
        "ARRAY(SELECT coalesce(a.attname, '') FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
        "      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "      WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) AS columns "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam "
        "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE i.indrelid = $1 AND i.indisvalid ORDER BY ic.relname", 2), row["oid"], locks.oids)
    return TableFacts(
        oid=row["oid"], name=row["name"], rows=row["rows"], pages=row["relpages"],
        columns=tuple(r["attname"] for r in columns),
        indexes=tuple(ExistingIndex(name=r["name"], columns=tuple(r["columns"]), method=r["method"],
                                    partial=r["partial"], unique=r["uniq"], definition=r["definition"])
                      for r in indexes),
    )


_UNUSED_SQL = _with_locked("""
SELECT s.schemaname || '.' || s.relname AS tbl, s.schemaname || '.' || s.indexrelname AS idx,
       {index_bytes} AS bytes, i.indexrelid = ANY($LOCKED::oid[]) AS estimated, {definition} AS definition
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = ic.relam
WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
  AND ($1::oid[] IS NULL OR s.relid = ANY($1::oid[]))
ORDER BY bytes DESC, idx LIMIT 50
""", 2)

_DUPLICATE_SQL = _with_locked(f"""
SELECT n.nspname || '.' || t.relname AS tbl,
       array_agg(n.nspname || '.' || ic.relname ORDER BY ic.relname) AS indexes,
       sum({{index_bytes}}) AS bytes, bool_or(i.indexrelid = ANY($LOCKED::oid[])) AS estimated
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND ($1::oid[] IS NULL OR i.indrelid = ANY($1::oid[]))
GROUP BY n.nspname, t.relname, i.indrelid, ic.relam, i.indkey::text, i.indclass::text, i.indcollation::text,
         {_NODE.format(column="i.indexprs")}, {_NODE.format(column="i.indpred")}
HAVING count(*) > 1
ORDER BY bytes DESC LIMIT 20
""", 2)


async def unused_and_duplicate(conn: asyncpg.Connection, *, view: LockView,
                               tables: Sequence[int] | None = None) -> list[Finding]:
    """Indexes never scanned since statistics began (not unique, not backing a constraint) and exact twins;
    each of the two runs on its own, so one failing still leaves the other's findings."""
    oids = list(tables) if tables is not None else None

    async def unused(locks: Locks) -> list[Finding]:
        return await unused_indexes(conn, oids, locks)

    async def duplicate(locks: Locks) -> list[Finding]:
        return await duplicate_indexes(conn, oids, locks)

    return [*await run_isolated(conn, "unused indexes", unused, view),
            *await run_isolated(conn, "duplicate indexes", duplicate, view)]


async def unused_indexes(conn: asyncpg.Connection, oids: list[int] | None, locks: Locks) -> list[Finding]:
    since = await conn.fetchval("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
    period = f"since statistics were reset on {since:%Y-%m-%d}" if since else "since statistics began on this server"
    unused = await conn.fetch(_UNUSED_SQL, oids, locks.oids)
    if not unused:
        return [Finding(Severity.OK, "unused_index", "no unused indexes")]
    total = sum(r["bytes"] for r in unused)
    return [Finding(
        Severity.WARNING if total >= 10 * 1024 * 1024 else Severity.INFO, "unused_index",
        f"{len(unused)} index{'es' if len(unused) != 1 else ''} never used {period} ({size(total)} in all)",
        details=tuple(f"{r['idx']} on {r['tbl']} ({_bytes(r['bytes'], r['estimated'])}): {r['definition']}"
                      for r in unused),
        why="Every index slows down each INSERT and UPDATE on its table and takes disk and cache space.",
        action=("Check that no replica or monthly job uses it (the counters are per server), then "
                "DROP INDEX CONCURRENTLY it."),
    )]


async def duplicate_indexes(conn: asyncpg.Connection, oids: list[int] | None, locks: Locks) -> list[Finding]:
    duplicates = await conn.fetch(_DUPLICATE_SQL, oids, locks.oids)
    if not duplicates:
        return [Finding(Severity.OK, "duplicate_index", "no duplicate indexes")]
    return [Finding(
        Severity.WARNING, "duplicate_index",
        f"{len(duplicates)} set{'s' if len(duplicates) != 1 else ''} of duplicate indexes "
        "(same table, columns, operator classes and condition)",
        details=tuple(f"{', '.join(r['indexes'])} on {r['tbl']} ({_bytes(r['bytes'], r['estimated'])} together)"
                      for r in duplicates),
        why="Identical indexes cost every write twice and help no query more than one of them.",
        action="Keep one of each set (the one a constraint uses, if any) and DROP INDEX CONCURRENTLY the others.",
    )]


def _bytes(n_bytes: float, estimated: bool) -> str:
    return f"~{size(n_bytes)}, estimate: locked" if estimated else size(n_bytes)


def rows_text(rows: float) -> str:
    return f"~{number(rows)} rows"

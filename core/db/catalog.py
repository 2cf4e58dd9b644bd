"""Catalog introspection in a few set-based queries (never one query per table).

All queries run through :meth:`Database.run` as the user's role, so people only see what their role can:
a table it cannot read is described as not found, and only the columns it may read are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from core.db.base import Connection, Database
from core.errors import ModelHint

TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       greatest(c.reltuples, 0)::bigint AS row_estimate,
       obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgbot')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  AND ($1::text IS NULL OR n.nspname = $1)
  AND has_schema_privilege(n.oid, 'USAGE')
  AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
  AND NOT c.relispartition
ORDER BY n.nspname, c.relname
"""

COLUMNS_SQL = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
       pg_get_expr(d.adbin, d.adrelid) AS default, col_description(a.attrelid, a.attnum) AS comment
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
  AND has_column_privilege(a.attrelid, a.attnum, 'SELECT')
ORDER BY a.attnum
"""

# Whether the current role may see a relation at all, as list_tables decides it (a column grant counts), and
# whether it may read all of it (only then are keys and indexes, which name any column, shown).
VISIBLE_SQL = """
SELECT has_schema_privilege(c.relnamespace, 'USAGE')
       AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT')) AS visible,
       has_table_privilege(c.oid, 'SELECT') AS whole
FROM pg_class c WHERE c.oid = $1
"""

CONSTRAINTS_SQL = """
SELECT conname AS name, contype::text AS type, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE conrelid = $1 ORDER BY contype, conname
"""

REFERENCED_BY_SQL = """
SELECT conrelid::regclass::text AS from_table, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE confrelid = $1 AND contype = 'f'
  AND (has_table_privilege(conrelid, 'SELECT') OR has_any_column_privilege(conrelid, 'SELECT'))
ORDER BY 1
"""

INDEXES_SQL = """
SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition,
       pg_size_pretty(pg_relation_size(x.indexrelid)) AS size
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = $1 ORDER BY i.relname
"""


@dataclass(frozen=True, slots=True)
class TableInfo:
    schema: str
    name: str
    kind: str
    row_estimate: int
    comment: str | None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool
    default: str | None
    comment: str | None


@dataclass(slots=True)
class TableDescription:
    table: str
    comment: str | None
    row_estimate: int
    columns: list[ColumnInfo] = field(default_factory=list)
    constraints: list[tuple[str, str, str]] = field(default_factory=list)  # (name, type, definition)
    referenced_by: list[tuple[str, str]] = field(default_factory=list)
    indexes: list[tuple[str, str, str]] = field(default_factory=list)  # (name, definition, size)

    def render(self) -> str:
        """Compact text for the model and for people."""
        lines = [f"Table {self.table} (~{self.row_estimate} rows)" + (f": {self.comment}" if self.comment else "")]
        lines.append("Columns:")
        for c in self.columns:
            extra = "" if c.nullable else " NOT NULL"
            extra += f" DEFAULT {c.default}" if c.default else ""
            extra += f"  -- {c.comment}" if c.comment else ""
            lines.append(f"  {c.name} {c.type}{extra}")
        kinds = {"p": "PRIMARY KEY", "f": "FOREIGN KEY", "u": "UNIQUE", "c": "CHECK", "x": "EXCLUDE"}
        if self.constraints:
            lines.append("Constraints:")
            lines += [f"  {name}: {definition}" for name, ctype, definition in self.constraints if ctype in kinds]
        if self.referenced_by:
            lines.append("Referenced by:")
            lines += [f"  {src}: {definition}" for src, definition in self.referenced_by]
        if self.indexes:
            lines.append("Indexes:")
            lines += [f"  {definition} ({size})" for _, definition, size in self.indexes]
        return "\n".join(lines)


async def list_tables(db: Database, *, role: str | None, schema: str | None = None) -> list[TableInfo]:
    async def work(conn: Connection) -> list[TableInfo]:
        rows = await conn.fetch(TABLES_SQL, schema)
        return [TableInfo(r["schema"], r["name"], r["kind"], r["row_estimate"], r["comment"]) for r in rows]

    return await db.run(work, role=role, read_only=True)


async def describe_table(db: Database, *, role: str | None, table: str) -> TableDescription:
    """Describe ``table`` (resolved like Postgres does, via the search_path); unknown → a hint for the model."""

    async def work(conn: Connection) -> TableDescription:
        try:
            oid = await conn.fetchval("SELECT to_regclass($1)::oid", table)
        except asyncpg.PostgresError:
            oid = None
        access = await conn.fetchrow(VISIBLE_SQL, oid) if oid is not None else None
        missing = ModelHint(f"No table or view named {table[:120]!r} is visible. Use list_tables to see names.")
        if access is None or not access["visible"]:  # a table the role cannot read is not confirmed to exist
            raise missing
        head = await conn.fetchrow(
            "SELECT $1::oid::regclass::text AS name, obj_description($1, 'pg_class') AS comment, "
            "greatest(reltuples, 0)::bigint AS est FROM pg_class WHERE oid = $1",
            oid,
        )
        if head is None:  # dropped since the look above
            raise missing
        desc = TableDescription(table=head["name"], comment=head["comment"], row_estimate=head["est"])
        desc.columns = [ColumnInfo(r["name"], r["type"], r["nullable"], r["default"], r["comment"])
                        for r in await conn.fetch(COLUMNS_SQL, oid)]
        if not access["whole"]:  # some columns only: keys and indexes could name the others
            return desc
        desc.constraints = [(r["name"], r["type"], r["definition"]) for r in await conn.fetch(CONSTRAINTS_SQL, oid)]
        desc.referenced_by = [(r["from_table"], r["definition"]) for r in await conn.fetch(REFERENCED_BY_SQL, oid)]
        desc.indexes = [(r["name"], r["definition"], r["size"]) for r in await conn.fetch(INDEXES_SQL, oid)]
        return desc

    return await db.run(work, role=role, read_only=True)


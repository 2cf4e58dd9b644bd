"""The facts about a changed table that decide whether its rows can be put back: its key, its columns, and
what else a change to it touches. Read in the statement's own transaction, as its role (so a name resolves
through that role's search_path exactly as the statement's does)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from core.undo.statement import Target

_TABLE = """
SELECT c.oid, n.nspname, c.relname, c.relkind::text AS relkind, c.relrowsecurity, c.relhassubclass,
       pg_catalog.has_table_privilege(c.oid, 'SELECT') AS can_read
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass($1)
"""
_COLUMNS = """
SELECT a.attname, a.attgenerated <> '' AS generated
FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
# Unique, valid, whole-column, non-partial indexes whose columns are all NOT NULL; the primary key first.
_KEYS = """
SELECT array_agg(a.attname ORDER BY k.ord) AS cols
FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL
  AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
GROUP BY i.indexrelid, i.indisprimary
HAVING bool_and(a.attnotnull)
ORDER BY i.indisprimary DESC, count(*), i.indexrelid
LIMIT 1
"""
# Foreign keys from other tables whose ON DELETE / ON UPDATE action changes those tables too.
_CASCADES = """
SELECT f.conrelid::regclass::text AS child, f.confdeltype::text AS on_delete, f.confupdtype::text AS on_update,
       ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = f.confrelid AND a.attnum = ANY (f.confkey)) AS cols
FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' AND f.confrelid = $1
"""
_TRIGGERS = """
SELECT t.tgname FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = $1 AND NOT t.tgisinternal AND t.tgenabled <> 'D' ORDER BY t.tgname
"""
_ACTIONS = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


@dataclass(frozen=True, slots=True)
class TableFacts:
    oid: int
    schema: str
    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # every column, in order: the undo refuses a table whose columns changed since
    generated: tuple[str, ...]  # computed by Postgres: never written back
    triggers: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


async def table_facts(conn: asyncpg.Connection, target: Target) -> TableFacts | str:
    """The facts, or why rows of this table cannot be put back by key."""
    row = await conn.fetchrow(_TABLE, target.name)
    if row is None:
        return f"pgbot could not find the table {target.table}"
    name = f"{row['nspname']}.{row['relname']}"
    if row["relkind"] not in ("r", "p"):
        return f"{name} is not a plain table"
    if row["relkind"] == "r" and row["relhassubclass"]:
        return f"{name} has inheritance children, whose rows share no key with it"
    if row["relrowsecurity"]:
        return f"{name} has row-level security"
    if not row["can_read"]:
        return f"your role may change {name} but not read it, so its rows cannot be kept"
    key = await conn.fetchval(_KEYS, row["oid"])
    if not key:
        return f"{name} has no primary key (or unique key on NOT NULL columns) to find its rows again"
    columns = await conn.fetch(_COLUMNS, row["oid"])
    for fk in await conn.fetch(_CASCADES, row["oid"]):
        action = _ACTIONS.get(fk["on_delete"] if target.kind == "delete" else fk["on_update"])
        if action and (target.kind == "delete" or set(fk["cols"]) & set(target.set_columns)):
            verb = "deleting from" if target.kind == "delete" else "updating"
            return (f"{verb} {name} also changes {fk['child']} (ON {target.kind.upper()} {action}), which an "
                    "undo cannot put back")
    if target.kind == "update" and set(key) & set(target.set_columns):
        return f"it changes the key of {name} ({', '.join(sorted(set(key) & set(target.set_columns)))})"
    return TableFacts(
        oid=int(row["oid"]), schema=str(row["nspname"]), table=str(row["relname"]), key=tuple(key),
        columns=tuple(str(c["attname"]) for c in columns),
        generated=tuple(str(c["attname"]) for c in columns if c["generated"]),
        triggers=tuple(str(t["tgname"]) for t in await conn.fetch(_TRIGGERS, row["oid"])),
    )

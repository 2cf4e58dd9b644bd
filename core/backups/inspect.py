"""What a backup will contain and whether the requester may have it: catalog reads, no data.

The dump itself runs as the bot's login role, so before anything is written pgbot checks that the
requester's own role could read every table it would contain: a backup must never hand someone data their
grants hide. pgbot's own bookkeeping (schema ``pgbot``: the audit trail, migrations) is not the user's data
and is left out of that check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import LiteralString

import asyncpg
import structlog

from core.db.postgres import PgDatabase
from core.errors import BackupError

log = structlog.get_logger(__name__)
BOOKKEEPING_SCHEMA = "pgbot"

# Plain and partitioned tables of the user's schemas; extension members are not dumped as data.
_TABLES: LiteralString = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, {size} AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1, 2
"""
_EXACT_SIZE: LiteralString = "pg_table_size(c.oid)"
# From the catalog's page counts (heap + TOAST, as of the last VACUUM/ANALYZE): no lock needed.
_ESTIMATED_SIZE: LiteralString = ("(c.relpages::bigint + coalesce(t.relpages, 0)) "
                                   "* current_setting('block_size')::bigint")
_SIZE_LOCK_TIMEOUT_MS = 500
# Tables the role cannot read in full: no SELECT, no USAGE on the schema, or row-level security it is subject to.
_UNREADABLE: LiteralString = """
SELECT n.nspname AS schema, c.relname AS name,
       CASE WHEN NOT has_schema_privilege($1, n.oid, 'USAGE') THEN 'no USAGE on schema'
            WHEN NOT has_table_privilege($1, c.oid, 'SELECT') THEN 'no SELECT'
            ELSE 'row-level security hides rows' END AS why
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', $2)
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
  AND (NOT has_schema_privilege($1, n.oid, 'USAGE') OR NOT has_table_privilege($1, c.oid, 'SELECT')
       OR (c.relrowsecurity AND NOT pg_has_role($1, c.relowner, 'USAGE')
           AND NOT (SELECT r.rolbypassrls FROM pg_roles r WHERE r.rolname = $1)))
ORDER BY 1, 2
"""
_FACTS: LiteralString = """
SELECT current_database() AS dbname, current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num, pg_encoding_to_char(d.encoding) AS encoding,
       d.datcollate::text AS collate, d.datctype::text AS ctype, pg_database_size(d.oid) AS size,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       current_user::text AS login_role,
       has_database_privilege(current_user, current_database(), 'CREATE') AS may_create
FROM pg_database d WHERE d.datname = current_database()
"""


@dataclass(frozen=True, slots=True)
class TableInfo:
    schema: str
    name: str
    kind: str  # r: table, p: partitioned parent (its rows live in the partitions)
    bytes: int

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    dbname: str
    server_version: str
    server_version_num: int
    encoding: str
    collate: str
    ctype: str
    size_bytes: int
    login_role: str
    login_is_superuser: bool
    tables: tuple[TableInfo, ...]

    @property
    def server_major(self) -> int:
        return self.server_version_num // 10000

    @property
    def data_tables(self) -> tuple[TableInfo, ...]:
        """Tables holding rows themselves (partitioned parents hold none)."""
        return tuple(t for t in self.tables if t.kind == "r")

    @property
    def table_bytes(self) -> int:
        return sum(t.bytes for t in self.tables)


async def database_facts(db: PgDatabase) -> DatabaseFacts:
    """Server version, size and tables, read as the login role (the role the dump runs as)."""

    async def work(conn: asyncpg.Connection) -> DatabaseFacts:
        row = await conn.fetchrow(_FACTS)
        tables = await _tables(conn)
        assert row is not None
        return DatabaseFacts(
            dbname=row["dbname"], server_version=row["version"], server_version_num=row["version_num"],
            encoding=row["encoding"], collate=row["collate"], ctype=row["ctype"], size_bytes=row["size"],
            login_role=row["login_role"], login_is_superuser=bool(row["superuser"]),
            tables=tuple(TableInfo(r["schema"], r["name"], r["kind"], r["bytes"]) for r in tables),
        )

    return await db.run(work, role=None, read_only=True)


async def _tables(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Exact sizes, unless a table is locked by someone else: pg_table_size() would wait behind that lock,
    and the check must not hang, so it falls back to the catalog's estimate."""
    try:
        async with conn.transaction():  # a savepoint: a lock timeout here leaves the outer transaction usable
            await conn.execute(f"SET LOCAL lock_timeout = {_SIZE_LOCK_TIMEOUT_MS}")
            return list(await conn.fetch(_TABLES.replace("{size}", _EXACT_SIZE)))
    except asyncpg.LockNotAvailableError:
        log.info("backup_sizes_estimated", reason="a table is locked")
        return list(await conn.fetch(_TABLES.replace("{size}", _ESTIMATED_SIZE)))


async def check_role_can_read(db: PgDatabase, role: str | None, *, action: str = "back up") -> None:
    """Refuse, naming tables, when ``role`` could not read every table the dump would contain."""
    if role is None:
        return  # no roles configured: the requester works as the login role, which the dump runs as

    async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
        if not exists:
            raise BackupError(f"Your database role {role} does not exist on '{db.name}'; ask an admin to fix "
                              f"[databases.{db.name}.roles].")
        return list(await conn.fetch(_UNREADABLE, role, BOOKKEEPING_SCHEMA))

    rows = await db.run(work, role=None, read_only=True)
    if not rows:
        return
    shown = ", ".join(f"{r['schema']}.{r['name']} ({r['why']})" for r in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    raise BackupError(
        f"Refused: your role {role} cannot read every table of '{db.name}', and a backup would contain them "
        f"all: {shown}{more}. Ask an admin for SELECT on them, or to make the backup from the command line.")

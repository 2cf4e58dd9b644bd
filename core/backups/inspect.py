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

from core.db.base import PostgresDatabase
from core.diagnostics.locks import Locks, RelationLock, current_locks
from core.errors import BackupError

log = structlog.get_logger(__name__)
BOOKKEEPING_SCHEMA = "pgbot"

# Plain and partitioned tables of the user's schemas; extension members are not dumped as data.
_TABLES: LiteralString = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       CASE WHEN {estimated} THEN {estimate} ELSE {size} END AS bytes, {estimated} AS estimated
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
# pg_table_size() opens the table and its TOAST table: estimate where either is locked ($1: locked oids).
_LOCKED: LiteralString = "(c.oid = ANY($1::oid[]) OR c.reltoastrelid = ANY($1::oid[]))"
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
    estimated: bool = False  # locked: the catalog's page count, not pg_table_size()

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
    locked: tuple[RelationLock, ...] = ()  # tables locked against reads now: sizes estimated, the dump would wait

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

    def lock_notes(self, lock_wait_timeout_ms: int) -> list[str]:
        """One line per locked table: its size is an estimate, and pg_dump would wait for the lock."""
        return [f"Right now {lock.describe()}: its size is an estimate, and pg_dump waits up to "
                f"{lock_wait_timeout_ms / 1000:g} s ([backups] lock_wait_timeout_ms) for that lock, then fails "
                "without leaving a file." for lock in self.locked]


async def database_facts(db: PostgresDatabase) -> DatabaseFacts:
    """Server version, size and tables, read as the login role (the role the dump runs as)."""

    async def work(conn: asyncpg.Connection) -> DatabaseFacts:
        row = await conn.fetchrow(_FACTS)  # pg_database_size() takes no relation lock
        tables, locks = await _tables(conn)
        assert row is not None
        infos = tuple(TableInfo(r["schema"], r["name"], r["kind"], r["bytes"], r["estimated"]) for r in tables)
        return DatabaseFacts(
            dbname=row["dbname"], server_version=row["version"], server_version_num=row["version_num"],
            encoding=row["encoding"], collate=row["collate"], ctype=row["ctype"], size_bytes=row["size"],
            login_role=row["login_role"], login_is_superuser=bool(row["superuser"]), tables=infos,
            locked=tuple(lock for lock in locks.reported() if lock.kind in ("r", "p")),
        )

    return await db.run(work, role=None, read_only=True)


async def _tables(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], Locks]:
    """Exact sizes, except for tables another session has locked: pg_table_size() would wait behind that
    lock, so theirs are the catalog's estimate. A lock taken after the look at pg_locks is met with a short
    lock_timeout, and then every size is estimated."""
    locks = await current_locks(conn)
    query = _TABLES.replace("{estimate}", _ESTIMATED_SIZE).replace("{size}", _EXACT_SIZE)
    try:
        async with conn.transaction():  # a savepoint: a lock timeout here leaves the outer transaction usable
            await conn.execute(f"SET LOCAL lock_timeout = {_SIZE_LOCK_TIMEOUT_MS}")
            return list(await conn.fetch(query.replace("{estimated}", _LOCKED), locks.oids)), locks
    except asyncpg.LockNotAvailableError:
        log.info("backup_sizes_estimated", reason="a table was locked meanwhile")
        locks = await current_locks(conn)
        return list(await conn.fetch(query.replace("{estimated}", "true"))), locks


async def check_role_can_read(db: PostgresDatabase, role: str | None, *, action: str = "back up") -> None:
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

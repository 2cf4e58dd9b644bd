"""Turn "build an index on table (columns)" into a checked :class:`PendingAction` with its preview text.

Shared by the ``propose_index`` tool and ``pgbot index-advice --create``: the table and columns are checked
against the catalog as the requesting role, an index already serving those columns is reported instead of
built twice, and a role that does not own the table is refused before anyone is asked to approve.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from core.approvals.decisions import role_label
from core.approvals.pending import PendingAction, action_hash
from core.db.base import PostgresDatabase
from core.db.postgres import quote_ident
from core.diagnostics.findings import number, size
from core.diagnostics.index_build import OPERATION
from core.diagnostics.index_catalog import TableFacts, table_facts
from core.diagnostics.locks import RelationLock, current_locks
from core.errors import IndexRequestError, PermissionDeniedError, PgbotError

MAX_INDEX_COLUMNS = 8


@dataclass(frozen=True, slots=True)
class IndexProposal:
    text: str
    action: PendingAction | None  # None: an existing index already does this; nothing to build


@dataclass(frozen=True, slots=True)
class Requester:
    identity: str
    role: str | None
    thread_key: str
    groups: tuple[str, ...] = ()  # the requester's platform groups, re-checked at approval


async def propose_index_build(db: PostgresDatabase, *, table: str, columns: Sequence[str], unique: bool,
                              requester: Requester, expiry_s: float) -> IndexProposal:
    columns = list(columns)
    if not columns or len(columns) > MAX_INDEX_COLUMNS or any(not c or len(c) > 63 for c in columns):
        raise IndexRequestError(f"Give 1 to {MAX_INDEX_COLUMNS} column names of the table.")
    if len(set(columns)) != len(columns):
        raise IndexRequestError("A column appears twice in the index; list each once.")

    async def work(conn: asyncpg.Connection) -> tuple[TableFacts | None, bool, float, str, list[RelationLock]]:
        locks = await current_locks(conn)
        facts = await table_facts(conn, table, locks=locks)
        if facts is None:
            return None, False, 0.0, "", []
        owner = await conn.fetchval("SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
                                    "WHERE oid = $1", facts.oid)
        # pg_relation_size() would wait behind a lock on the table: the catalog's page count then.
        bytes_ = await conn.fetchval(
            "SELECT CASE WHEN $1::oid = ANY($2::oid[]) THEN relpages::float8 * current_setting('block_size')::float8 "
            "ELSE pg_relation_size($1::oid)::float8 END FROM pg_class WHERE oid = $1", facts.oid, locks.oids)
        return facts, bool(owner), float(bytes_ or 0.0), await _free_name(conn, facts, columns), locks.on([facts.oid])

    try:
        facts, owner, table_bytes, name, locked = await db.run(work, role=requester.role, read_only=True)
    except PgbotError as exc:
        if "invalid name syntax" in exc.user_message or "improper qualified name" in exc.user_message:
            raise IndexRequestError(f"{table[:100]!r} is not a valid table name.") from None
        raise
    if facts is None:
        raise IndexRequestError(f"There is no table named {table[:100]!r} visible to "
                                f"{role_label(requester.role)}; check the name.")
    missing = [c for c in columns if c not in facts.columns]
    if missing:
        raise IndexRequestError(f"{facts.name} has no column {', '.join(missing)}; its columns are "
                                f"{', '.join(facts.columns)}.")
    same = next((ix for ix in facts.indexes if ix.covers(columns) and len(ix.columns) == len(columns)
                 and (ix.unique or not unique)), None)
    if same is not None:
        return IndexProposal(text=f"{facts.name} already has index {same.name} on ({', '.join(columns)}): "
                                  f"{same.definition}. Nothing to build.", action=None)
    if not owner:
        raise PermissionDeniedError(f"Postgres lets only the owner of {facts.name} create indexes on it, and "
                                    f"{role_label(requester.role)} does not own it, so this cannot be proposed.")
    schema, _, relname = facts.name.partition(".")
    sql = (f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY {quote_ident(name)} ON "
           f"{quote_ident(schema)}.{quote_ident(relname)} ({', '.join(quote_ident(c) for c in columns)})")
    params = {"schema": schema, "name": name, "table": facts.name, "columns": ",".join(columns),
              "unique": "true" if unique else "false"}
    now = time.time()
    action = PendingAction(
        database=db.name, thread_key=requester.thread_key, requested_by=requester.identity, role=requester.role,
        requester_groups=requester.groups, sql=sql,
        sql_hash=action_hash(sql, OPERATION, params), kind="ddl", statement_type="IndexStmt",
        summary=f"CREATE INDEX CONCURRENTLY {name} on {facts.name}", tables=(facts.name,),
        lock="SHARE UPDATE EXCLUSIVE", outside_transaction=True, operation=OPERATION, params=params,
        created_at=now, expires_at=now + expiry_s,
    )
    text = "\n".join([
        f"This builds index {schema}.{name} on {facts.name} ({', '.join(columns)}): ~{number(facts.rows)} rows, "
        f"{'~' if locked else ''}{size(table_bytes)} of table to read. It will run as {role_label(requester.role)} "
        f"on '{db.name}'.",
        *(f"Right now {lock.describe()}: the size is an estimate, and the build waits for that lock (up to "
          "lock_timeout, then it fails and nothing is left behind)." for lock in locked),
        "Lock: SHARE UPDATE EXCLUSIVE on the table: reads and writes continue while it builds; other schema "
        "changes and VACUUM on it wait. CONCURRENTLY takes longer than a plain build and first waits for "
        "transactions already writing to the table.",
        "It cannot run inside a transaction; progress is posted while it builds, and if it fails, the INVALID "
        "index it leaves is dropped.",
    ])
    return IndexProposal(text=text, action=action)


async def _free_name(conn: asyncpg.Connection, facts: TableFacts, columns: list[str]) -> str:
    """``<table>_<columns>_idx`` cut to Postgres's 63 bytes, with a number added if the name is taken."""
    schema, _, relname = facts.name.partition(".")
    base = re.sub(r"[^a-z0-9_]+", "_", f"{relname}_{'_'.join(columns)}".lower()).strip("_")[:55] or "idx"
    for n in range(100):
        name = f"{base}_idx" if n == 0 else f"{base}_idx{n}"
        taken = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{quote_ident(schema)}.{quote_ident(name)}")
        if not taken:
            return name
    raise IndexRequestError("Could not find a free index name; choose other columns.")

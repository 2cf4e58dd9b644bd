"""Which relations an ACCESS EXCLUSIVE lock makes unreadable right now, read from ``pg_locks`` (no lock taken).

Size functions (``pg_relation_size``, ``pg_table_size``, ``pg_indexes_size``), deparsers (``pg_get_indexdef``,
``pg_get_expr``, ``pg_get_constraintdef``), EXPLAIN and HypoPG all open the relation with ACCESS SHARE, which
waits behind an ACCESS EXCLUSIVE lock that is held *or queued* (new requests line up behind a waiting one).
Catalog reads (``pg_class``, ``pg_index``, ``pg_attribute``, ``pg_stats``, ``pg_stat_*``, ``::regclass::text``)
take no relation lock. Diagnostics look here first and use those for the relations listed, so a health check
during an incident answers at once instead of failing on ``lock_timeout``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import LiteralString

import asyncpg

from core.diagnostics.findings import Finding, Severity, duration_s

# One row per locked relation of this database (a held lock first), with its index's table for indexes.
# Locks of this session never block it; ``waitstart`` (when a queued request began waiting) is PostgreSQL 14+.
_LOCKS: LiteralString = """
SELECT DISTINCT ON (l.relation) l.relation AS oid, n.nspname || '.' || c.relname AS name,
       c.relkind::text AS kind, c.relpersistence = 't' AS temporary, coalesce(i.indrelid, c.oid) AS table_oid,
       l.pid, l.granted,
       extract(epoch FROM now() - CASE WHEN l.granted THEN a.xact_start ELSE {waitstart} END)::float8 AS secs
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.pid IS DISTINCT FROM pg_backend_pid()
ORDER BY l.relation, l.granted DESC, l.pid
"""


@dataclass(frozen=True, slots=True)
class RelationLock:
    """An ACCESS EXCLUSIVE lock on one relation, held or queued by another session."""

    oid: int
    relation: str  # schema.name
    kind: str  # pg_class.relkind: r table, i index, p partitioned table, m materialized view …
    table_oid: int  # the index's table for an index, else the relation itself
    pid: int | None  # None: a prepared transaction holds it
    granted: bool
    seconds: float | None  # transaction open (held) or waiting (queued); None when not visible to this role
    temporary: bool = False

    def describe(self) -> str:
        """``public.orders is locked by pid 123 (ACCESS EXCLUSIVE, 4 min)``."""
        age = f", {duration_s(self.seconds)}" if self.seconds is not None else ""
        who = f"pid {self.pid}" if self.pid is not None else "a prepared transaction"
        if self.granted:
            return f"{self.relation} is locked by {who} (ACCESS EXCLUSIVE{age})"
        return (f"{self.relation} has an ACCESS EXCLUSIVE lock queued by {who} (waiting{age}), so every new "
                "reader waits behind it")


@dataclass(frozen=True, slots=True)
class Locks:
    """The locked relations of the database at one moment, by oid."""

    by_oid: Mapping[int, RelationLock] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_oid)

    @property
    def oids(self) -> list[int]:
        """For SQL: ``$n::oid[]`` of relations whose size or definition must come from the catalog."""
        return sorted(self.by_oid)

    def on(self, oids: Iterable[int]) -> list[RelationLock]:
        """The locks on any of ``oids``, or on an index of one of them (planning opens every index)."""
        wanted = set(oids)
        return [lock for oid, lock in sorted(self.by_oid.items())
                if oid in wanted or lock.table_oid in wanted]

    def reported(self) -> list[RelationLock]:
        """What is worth telling people: not other sessions' temporary tables."""
        return [lock for _, lock in sorted(self.by_oid.items()) if not lock.temporary]


async def current_locks(conn: asyncpg.Connection) -> Locks:
    """ACCESS EXCLUSIVE locks held or queued by other sessions on relations of this database."""
    modern = await conn.fetchval("SELECT current_setting('server_version_num')::int >= 140000")
    query = _LOCKS.replace("{waitstart}", "l.waitstart" if modern else "NULL::timestamptz")
    rows = await conn.fetch(query)
    return Locks({r["oid"]: RelationLock(oid=r["oid"], relation=r["name"], kind=r["kind"], table_oid=r["table_oid"],
                                         pid=r["pid"], granted=r["granted"], seconds=r["secs"],
                                         temporary=r["temporary"])
                  for r in rows})


def locked_finding(locks: Locks) -> Finding:
    """The health check's line on locked relations: why other figures for them are estimates."""
    shown = locks.reported()
    if not shown:
        return Finding(Severity.OK, "locked_relation", "no table locked against reads")
    return Finding(
        Severity.WARNING, "locked_relation",
        f"{len(shown)} relation{'s' if len(shown) != 1 else ''} locked against every read (ACCESS EXCLUSIVE)",
        details=tuple(f"{lock.describe()}: sizes are estimates" for lock in shown),
        why=("Every query touching them waits until the lock is released or its lock_timeout ends; pgbot "
             "reads their sizes and definitions from the catalog instead (sizes as of the last VACUUM/ANALYZE)."),
        action=("Find out what the locking session is doing (ALTER TABLE, TRUNCATE, VACUUM FULL, LOCK TABLE …) and "
                "ask its owner to commit or roll back; a DBA can end an abandoned one with pg_terminate_backend(pid)."),
    )

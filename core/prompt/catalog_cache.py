"""The whole visible catalog of a database, read in one set-based query and cached per (database, role).

Why set-based: a schema with thousands of tables must not cost thousands of round trips; one query
(relations with their columns and keys) reads everything a role can see, whatever the table count.
Why per role: what a role may SELECT decides what it should be told exists.
Why a fingerprint: DDL, COMMENT and GRANT rewrite rows of a handful of catalogs, so ``count(*)`` and
``sum(xmin)`` of those change; comparing them is one cheap query (about 20 ms on a 5,000-table database),
run at most every ``recheck_s`` seconds per database however many conversations ask; the full reload
happens only when it differs.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from core.prompt.ranking import TableDoc, TableIndex
from core.sqlguard import qualified_name

if TYPE_CHECKING:
    from core.db.base import Connection, Database

COMMENT_CHARS = 1000  # comments are cut in SQL: a 1 MB comment must not reach Python, let alone a prompt

_VISIBLE = """
  c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgbot')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  AND has_schema_privilege(n.oid, 'USAGE')
  AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
"""

# One row per table, its columns and keys as JSON text. Why not three plain queries (tables, columns, keys):
# asyncpg decodes rows inside the event loop's read callback, and tens of thousands of small rows cost ~50 ms
# per 256 kB read on a 5,000-table schema; one fat row per table costs well under a millisecond per read, and
# the JSON is parsed later in small cooperative steps.
CATALOG_SQL = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, quote_ident(n.nspname) AS sql_schema,
       quote_ident(c.relname) AS sql_name, c.relkind::text AS kind,
       greatest(c.reltuples, 0)::bigint AS row_estimate, left(d.description, $1) AS comment,
       (SELECT json_agg(json_build_array(a.attname, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                                         a.attnotnull, left(ad.description, $1)) ORDER BY a.attnum)
        FROM pg_attribute a
        LEFT JOIN pg_description ad ON ad.objoid = a.attrelid AND ad.classoid = 'pg_class'::regclass
             AND ad.objsubid = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND has_column_privilege(c.oid, a.attnum, 'SELECT'))::text AS columns,
       (SELECT json_agg(json_build_array(con.contype, con.confrelid::bigint,
               ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.i),
               ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i))
               ORDER BY con.contype, con.conname)
        FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype IN ('p', 'f'))::text AS keys
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE {_VISIBLE}
ORDER BY n.nspname, c.relname
"""

# DDL, COMMENT and GRANT (relacl, nspacl, pg_auth_members) all rewrite rows here; a changed row gets a new xmin.
FINGERPRINT_SQL = """
SELECT concat_ws(':',
  (SELECT count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) FROM pg_class),
  (SELECT count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) FROM pg_attribute),
  (SELECT count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) FROM pg_description),
  (SELECT count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) FROM pg_constraint),
  (SELECT count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) FROM pg_namespace),
  (SELECT count(*) || '.' || coalesce(sum(xmin::text::bigint), 0) FROM pg_auth_members))
"""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql_name: str  # quoted by Postgres's own quote_ident when needed
    type: str
    not_null: bool
    comment: str | None


@dataclass(frozen=True, slots=True)
class ForeignKey:
    columns: tuple[str, ...]
    target: int  # oid of the referenced table
    target_columns: tuple[str, ...]


@dataclass(slots=True)
class Table:
    oid: int
    schema: str
    name: str
    sql_schema: str
    sql_name: str
    kind: str
    row_estimate: int
    comment: str | None
    columns: list[Column] = field(default_factory=list)
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    referenced_by: list[int] = field(default_factory=list)  # oids of tables with a foreign key to this one
    variant_of: int | None = None  # orders_archive_2019, stg_orders → the oid of orders (same schema)
    variants: list[int] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        """The name to write in SQL: ``schema.table``, each part quoted only when Postgres needs it."""
        return f"{self.sql_schema}.{self.sql_name}"


@dataclass(slots=True)
class Catalog:
    """Every table a role can read, with columns and keys, plus a search index over them."""

    tables: list[Table]
    fingerprint: str
    loaded_ms: float = 0.0
    by_oid: dict[int, Table] = field(default_factory=dict)
    index: TableIndex = field(default_factory=lambda: TableIndex([]))
    position: dict[int, int] = field(default_factory=dict)  # oid → index in ``tables`` (and in ``index.docs``)
    whole: dict[int, str | None] = field(default_factory=dict)  # budget → the whole schema text, None: too big
    names: dict[int, tuple[str, frozenset[int]]] = field(default_factory=dict)  # budget → stable catalog, oids named
    readable: frozenset[str] | None = None  # every table's spellings, built once (readable_names)

    def neighbours(self, oid: int) -> set[int]:
        """Tables one foreign key away, in either direction."""
        table = self.by_oid[oid]
        out = {fk.target for fk in table.foreign_keys if fk.target in self.by_oid}
        out.update(o for o in table.referenced_by if o in self.by_oid)
        out.discard(oid)
        return out


def build_catalog(rows: Sequence[asyncpg.Record], *, fingerprint: str) -> Catalog:
    """Assemble the catalog and its search index in one go (small schemas, tests)."""
    steps = _build_steps(rows, fingerprint=fingerprint)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            catalog: Catalog = done.value
            return catalog


async def build_catalog_cooperatively(rows: Sequence[asyncpg.Record], *, fingerprint: str) -> Catalog:
    """The same, giving the event loop a turn every millisecond or so (5,000 tables: ~150 ms of CPU in all).

    Why the garbage collector is involved: building allocates ~100,000 objects, which triggers full
    collections, and a full collection walks every object in the process (80-100 ms in a big process): that
    pause, not pgbot's code, is what blocked the loop. So collection is paused while building, and the new
    catalog (long-lived, cycle-free: reference counting still frees it when replaced) is then moved to the
    permanent generation with ``gc.freeze()``, so later full collections no longer walk it.
    """
    steps = _build_steps(rows, fingerprint=fingerprint)
    big = len(rows) >= GC_FREEZE_TABLES
    with _gc_paused(big):
        while True:
            try:
                next(steps)
            except StopIteration as done:
                catalog: Catalog = done.value
                break
            await asyncio.sleep(0)
    return catalog


GC_FREEZE_TABLES = 500


class _GcPause:
    """Counts concurrent builds so the first pauses collection and the last one restores it."""

    active = 0
    was_enabled = True


@contextmanager
def _gc_paused(active: bool) -> Iterator[None]:
    """Pause cyclic GC (safe across concurrent builds), then freeze what was built."""
    if not active:
        yield
        return
    if _GcPause.active == 0:
        _GcPause.was_enabled = gc.isenabled()
        gc.disable()
    _GcPause.active += 1
    try:
        yield
    finally:
        _GcPause.active -= 1
        if _GcPause.active == 0:
            gc.freeze()
            if _GcPause.was_enabled:
                gc.enable()


_CHUNK = 50  # tables handled between yields (~1 ms each chunk)


def _build_steps(rows: Sequence[asyncpg.Record], *, fingerprint: str) -> Generator[None, None, Catalog]:
    found: list[Table] = []
    keys_of: list[list[tuple[str, int, list[str], list[str]]]] = []
    for n, r in enumerate(rows):
        table = Table(oid=int(r["oid"]), schema=str(r["schema"]), name=str(r["name"]),
                      sql_schema=str(r["sql_schema"]), sql_name=str(r["sql_name"]), kind=str(r["kind"]),
                      row_estimate=int(r["row_estimate"]), comment=_clean(r["comment"]))
        for name, sql_name, col_type, not_null, comment in json.loads(r["columns"] or "[]"):
            table.columns.append(Column(str(name), str(sql_name), _short_type(str(col_type)), bool(not_null),
                                        _clean(comment)))
        found.append(table)
        keys_of.append(json.loads(r["keys"] or "[]"))
        if n % _CHUNK == _CHUNK - 1:
            yield
    by_oid = {t.oid: t for t in found}
    for table, keys in zip(found, keys_of, strict=True):
        for kind, target, columns, target_columns in keys:
            cols = tuple(columns)
            if kind == "p":
                table.primary_key = cols
            elif int(target) in by_oid:  # a foreign key to a table the role cannot see is not mentioned
                target_table = by_oid[int(target)]
                table.foreign_keys.append(ForeignKey(cols, target_table.oid, tuple(target_columns)))
                if table.oid not in target_table.referenced_by:
                    target_table.referenced_by.append(table.oid)
    yield
    _link_variants(found)
    yield
    docs = []
    for n, t in enumerate(found):
        docs.append(TableDoc(
            schema=t.schema, name=t.name, comment=t.comment or "",
            columns=tuple(c.name for c in t.columns),
            column_comments=tuple(c.comment for c in t.columns if c.comment),
            links=len(t.referenced_by) + len(t.foreign_keys),
        ))
        if n % (_CHUNK * 10) == _CHUNK * 10 - 1:
            yield
    index = TableIndex(docs, steps=True)
    yield from index.build(chunk=_CHUNK)
    position = {t.oid: i for i, t in enumerate(found)}
    return Catalog(tables=found, fingerprint=fingerprint, by_oid=by_oid, index=index, position=position)


def _link_variants(tables: list[Table]) -> None:
    """Mark copies: a table whose name is another table's name plus ``_``-separated affixes, same schema.

    Real databases collect such copies (backups, yearly archives, staging loads). Shown in full they crowd
    the real table out of the prompt; shown as a name next to it they still tell the model they exist.
    """
    by_name = {(t.schema, t.name): t for t in tables}
    base_of: dict[int, Table] = {}
    for t in tables:
        parts = t.name.split("_")
        mine = {c.name for c in t.columns}
        for size in range(len(parts) - 1, 0, -1):
            found = None
            for start in range(len(parts) - size + 1):
                base = by_name.get((t.schema, "_".join(parts[start:start + size])))
                theirs = {c.name for c in base.columns} if base is not None else set()
                # A copy has (nearly) the base's columns: user_roles is not a copy of user.
                if base is not None and base is not t and theirs and len(mine & theirs) >= 0.8 * len(theirs):
                    found = base
                    break
            if found is not None:
                base_of[t.oid] = found
                break
    for t in tables:
        root = base_of.get(t.oid)
        seen = {t.oid}
        while root is not None and root.oid in base_of and root.oid not in seen:
            seen.add(root.oid)
            root = base_of[root.oid]
        if root is not None and root.oid != t.oid:
            t.variant_of = root.oid
            root.variants.append(t.oid)


def _clean(value: object) -> str | None:
    """One line, no control characters: comments are data shown inside a prompt, never layout."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


_TYPE_ABBREVIATIONS = (
    ("timestamp with time zone", "timestamptz"),
    ("timestamp without time zone", "timestamp"),
    ("time with time zone", "timetz"),
    ("time without time zone", "time"),
    ("character varying", "varchar"),
    ("character", "char"),
    ("double precision", "float8"),
    ("integer", "int"),
    ("boolean", "bool"),
)


def _short_type(name: str) -> str:
    """Postgres's own short spellings: fewer tokens, same meaning to the model."""
    for long, short in _TYPE_ABBREVIATIONS:
        if name.startswith(long):
            return short + name[len(long):]
    return name


async def load_catalog(db: Database, *, role: str | None, fingerprint: str = "") -> Catalog:
    """Read the catalog as ``role`` (so it sees exactly what the role may read) in one transaction."""
    started = time.perf_counter()

    async def work(conn: Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(CATALOG_SQL, COMMENT_CHARS)
        return rows

    rows = await db.run(work, role=role, read_only=True)
    catalog = await build_catalog_cooperatively(rows, fingerprint=fingerprint)
    catalog.loaded_ms = (time.perf_counter() - started) * 1000
    return catalog


async def catalog_fingerprint(db: Database) -> str:
    """A cheap value that changes whenever tables, columns, comments, keys or grants change."""

    async def work(conn: Connection) -> str:
        return str(await conn.fetchval(FINGERPRINT_SQL))

    return await db.run(work, role=None, read_only=True)


@dataclass(slots=True)
class _Checked:
    fingerprint: str
    at: float


class CatalogCache:
    """Catalogs per (database, role), reloaded only when the database's fingerprint changes.

    Concurrent callers share one fingerprint check and one reload (single flight), so a burst of 200
    conversations on a cold cache costs one introspection, not 200.
    """

    def __init__(self, *, recheck_s: float = 5.0, max_entries: int = 64) -> None:
        self._recheck_s = recheck_s
        self._max_entries = max_entries
        self._catalogs: OrderedDict[tuple[str, str | None], Catalog] = OrderedDict()
        self._checked: dict[str, _Checked] = {}
        self._locks: dict[tuple[str, str | None], asyncio.Lock] = {}
        self.loads = 0  # how many full introspections ran (tests and benchmarks read it)

    def _lock(self, key: tuple[str, str | None]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def fingerprint(self, db: Database) -> str:
        checked = self._checked.get(db.name)
        if checked is not None and time.monotonic() - checked.at < self._recheck_s:
            return checked.fingerprint
        async with self._lock((db.name, "\x00fingerprint")):
            checked = self._checked.get(db.name)
            if checked is not None and time.monotonic() - checked.at < self._recheck_s:
                return checked.fingerprint
            value = await catalog_fingerprint(db)
            self._checked[db.name] = _Checked(value, time.monotonic())
            return value

    async def get(self, db: Database, *, role: str | None) -> Catalog:
        key = (db.name, role)
        fingerprint = await self.fingerprint(db)
        cached = self._catalogs.get(key)
        if cached is not None and cached.fingerprint == fingerprint:
            self._catalogs.move_to_end(key)
            return cached
        async with self._lock(key):
            cached = self._catalogs.get(key)
            if cached is not None and cached.fingerprint == fingerprint:
                return cached
            catalog = await load_catalog(db, role=role, fingerprint=fingerprint)
            self.loads += 1
            self._catalogs[key] = catalog
            self._catalogs.move_to_end(key)
            while len(self._catalogs) > self._max_entries:
                old, _ = self._catalogs.popitem(last=False)
                self._locks.pop(old, None)
            return catalog

    def invalidate(self, database: str | None = None) -> None:
        """Forget cached catalogs (all, or one database's): the next question reloads."""
        for key in [k for k in self._catalogs if database is None or k[0] == database]:
            del self._catalogs[key]
        for name in [n for n in self._checked if database is None or n == database]:
            del self._checked[name]


def estimate_tokens(text: str) -> int:
    """Tokens as chars/4, the usual rule of thumb for English and SQL with OpenAI tokenizers.

    An approximation on purpose: exact tokenizers need a per-model vocabulary download. Comparisons made
    with it (prompt vs full dump) are ratios of similar text, where the constant cancels out.
    """
    return math.ceil(len(text) / 4)


def readable_names(tables: Sequence[tuple[str, str]]) -> frozenset[str]:
    """``schema.table`` and bare ``table`` for each (schema, table) a role can read, spelt as the guard does.

    A bare name counts as readable when the role can read a table of that name in some schema; Postgres
    then resolves it through the search path, which is still only tables the role may see or an error."""
    names: set[str] = set()
    for schema, name in tables:
        names.add(qualified_name(schema, name))
        names.add(qualified_name(name))
    return frozenset(names)

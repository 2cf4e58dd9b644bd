"""Wide values cut by the database, so no single cell of a read can fill pgbot's memory.

``SELECT repeat('x', 50000000) FROM generate_series(1, 8)`` must show a few hundred characters per cell, not
move 400 MB into Python: the read is wrapped in an outer SELECT that applies ``left(c::text, N)`` (and
reports the full length) to every column whose type is not known to be narrow, found from the prepared
statement's attributes. Columns are renamed positionally (``AS pgbot_read(c0, c1, …)``), so duplicate and
odd column names keep working; the caller keeps the original names.

``numeric`` stays a number (charts and alignment need it), but one value may hold 131,072 digits: a numeric
longer than N characters arrives as NULL beside its length and is shown as cut.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import asyncpg

from core.messages import CutText
from core.sqlguard import Classification

# Types whose values have a small fixed or bounded width: fetched as they are. Anything else (text, json,
# bytea, xml, arrays, composites, unknown and extension types) is cut by the database first.
_NARROW_TYPES = frozenset({
    "bool", "int2", "int4", "int8", "float4", "float8", "money", "oid", "regclass", "regtype",
    "regproc", "regprocedure", "regnamespace", "regrole", "date", "time", "timetz", "timestamp", "timestamptz",
    "interval", "uuid", "inet", "cidr", "macaddr", "macaddr8", "name", "char", "xid", "xid8", "cid", "tid",
    "pg_lsn", "void",
})
_BOUNDED_STATEMENTS = frozenset({"SelectStmt"})
_LONG_NUMBER_TYPES = frozenset({"numeric"})  # kept as numbers, but only up to N characters


@dataclass(frozen=True, slots=True)
class BoundedSelect:
    """The read wrapped so wide cells arrive cut: ``left(x::text, N)`` plus the full length, per wide column."""

    sql: str
    wide: tuple[int, ...]  # positions of the wide columns in the original result
    binary: frozenset[int] = frozenset()  # bytea columns: their length is in bytes
    numbers: frozenset[int] = frozenset()  # numeric columns: NULL with a length over N is a cut number

    def row(self, record: asyncpg.Record) -> tuple[object, ...]:
        values = list(record)
        out: list[object] = []
        lengths = values[len(values) - len(self.wide):]
        by_position = dict(zip(self.wide, lengths, strict=True))
        for i, value in enumerate(values[: len(values) - len(self.wide)]):
            length = by_position.get(i)
            if i in self.numbers:
                if value is None and isinstance(length, int):
                    value = CutText("", full_length=length, unit="chars")
            elif isinstance(value, str) and isinstance(length, int) and (i in self.binary or length > len(value)):
                value = CutText(value, full_length=length, unit="bytes" if i in self.binary else "chars")
            out.append(value)
        return tuple(out)


def bounded_select(checked: Classification, attributes: tuple[asyncpg.types.Attribute, ...], *,
                   max_chars: int) -> BoundedSelect | None:
    """A wrapper that cuts wide columns in the database, or None when every column is narrow (or the
    statement is not a plain query: SHOW output is small, EXPLAIN is cut by core.db.bounded_explain)."""
    if checked.statement_type not in _BOUNDED_STATEMENTS:
        return None
    def builtin(a: asyncpg.types.Attribute, names: frozenset[str]) -> bool:
        return a.type.kind == "scalar" and a.type.schema == "pg_catalog" and a.type.name in names

    wide = tuple(i for i, a in enumerate(attributes) if not builtin(a, _NARROW_TYPES))
    if not wide:
        return None
    numbers = frozenset(i for i in wide if builtin(attributes[i], _LONG_NUMBER_TYPES))
    n = int(max_chars)
    inner = [f"c{i}" for i in range(len(attributes))]
    select = [f"c{i}" if i not in wide else f"CASE WHEN length(c{i}::text) <= {n} THEN c{i} END" if i in numbers
              else f"left(c{i}::text, {n})" for i in range(len(attributes))]
    binary = frozenset(i for i in wide if attributes[i].type.name == "bytea")
    select += [f"octet_length(c{i})" if i in binary
               else f"CASE WHEN length(c{i}::text) > {n} THEN length(c{i}::text) END" if i in numbers
               else f"length(c{i}::text)" for i in wide]
    # The newline keeps a trailing "-- comment" in the read from swallowing the parenthesis.
    sql = f"SELECT {', '.join(select)} FROM (\n{checked.sql}\n) AS pgbot_read({', '.join(inner)})"
    return BoundedSelect(sql=sql, wide=wide, binary=binary, numbers=numbers)


# What one read may hold in Python, measured with sys.getsizeof over the fetched records: cells are cut to
# N characters, but 800 columns of them over 500 rows (one short statement) still made ~900 MB.
MAX_RESULT_BYTES = 16 * 1024 * 1024
_NARROW_CELL_BYTES = 100  # a fixed-width value (int, date, uuid, …) and its slot, generously


def row_bound(columns: int, bounded: BoundedSelect | None, *, max_chars: int) -> int:
    """An upper bound of one fetched row's size in memory (4 bytes a character, the widest Python str)."""
    wide = len(bounded.wide) if bounded is not None else columns  # unbounded statements: any cell may be wide
    return 100 + wide * (4 * max_chars + 2 * _NARROW_CELL_BYTES) + (columns - wide) * _NARROW_CELL_BYTES


def _size(record: asyncpg.Record) -> int:
    return sys.getsizeof(record) + sum(sys.getsizeof(value) for value in record)


async def fetch_within(cursor: asyncpg.cursor.Cursor, *, max_rows: int, bound: int,
                       budget: int = MAX_RESULT_BYTES) -> tuple[list[asyncpg.Record], bool, bool]:
    """Up to ``max_rows`` records, in batches sized so the records held stay within ``budget`` bytes.

    Returns (records, more rows exist, the byte budget cut them). A narrow result comes in one round trip.
    """
    records: list[asyncpg.Record] = []
    used = 0
    while used < budget:
        want = max_rows + 1 - len(records)
        batch = min(want, max(1, (budget - used) // max(bound, 1)))
        got = await cursor.fetch(batch)
        records.extend(got)
        used += sum(_size(r) for r in got)
        if len(records) > max_rows:
            return records[:max_rows], True, False
        if len(got) < batch:
            return records, False, False
    return records, bool(await cursor.fetch(1)), True

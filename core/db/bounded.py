"""Wide values cut by the database, so no single cell of a read can fill pgbot's memory.

``SELECT repeat('x', 50000000) FROM generate_series(1, 8)`` must show a few hundred characters per cell, not
move 400 MB into Python: the read is wrapped in an outer SELECT that applies ``left(c::text, N)`` (and
reports the full length) to every column whose type is not known to be narrow, found from the prepared
statement's attributes. Columns are renamed positionally (``AS pgbot_read(c0, c1, …)``), so duplicate and
odd column names keep working; the caller keeps the original names.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from core.messages import CutText
from core.sqlguard import Classification

# Types whose values have a small fixed or bounded width: fetched as they are. Anything else (text, json,
# bytea, xml, arrays, composites, unknown and extension types) is cut by the database first.
_NARROW_TYPES = frozenset({
    "bool", "int2", "int4", "int8", "float4", "float8", "numeric", "money", "oid", "regclass", "regtype",
    "regproc", "regprocedure", "regnamespace", "regrole", "date", "time", "timetz", "timestamp", "timestamptz",
    "interval", "uuid", "inet", "cidr", "macaddr", "macaddr8", "name", "char", "xid", "xid8", "cid", "tid",
    "pg_lsn", "void",
})
_BOUNDED_STATEMENTS = frozenset({"SelectStmt"})


@dataclass(frozen=True, slots=True)
class BoundedSelect:
    """The read wrapped so wide cells arrive cut: ``left(x::text, N)`` plus the full length, per wide column."""

    sql: str
    wide: tuple[int, ...]  # positions of the wide columns in the original result
    binary: frozenset[int] = frozenset()  # bytea columns: their length is in bytes

    def row(self, record: asyncpg.Record) -> tuple[object, ...]:
        values = list(record)
        out: list[object] = []
        lengths = values[len(values) - len(self.wide):]
        by_position = dict(zip(self.wide, lengths, strict=True))
        for i, value in enumerate(values[: len(values) - len(self.wide)]):
            length = by_position.get(i)
            if isinstance(value, str) and isinstance(length, int) and (i in self.binary or length > len(value)):
                value = CutText(value, full_length=length, unit="bytes" if i in self.binary else "chars")
            out.append(value)
        return tuple(out)


def bounded_select(checked: Classification, attributes: tuple[asyncpg.types.Attribute, ...], *,
                   max_chars: int) -> BoundedSelect | None:
    """A wrapper that cuts wide columns in the database, or None when every column is narrow (or the
    statement is not a plain query: SHOW and EXPLAIN output is already bounded)."""
    if checked.statement_type not in _BOUNDED_STATEMENTS:
        return None
    wide = tuple(i for i, a in enumerate(attributes)
                 if a.type.kind != "scalar" or a.type.schema != "pg_catalog" or a.type.name not in _NARROW_TYPES)
    if not wide:
        return None
    inner = [f"c{i}" for i in range(len(attributes))]
    select = [f"left(c{i}::text, {int(max_chars)})" if i in wide else f"c{i}" for i in range(len(attributes))]
    binary = frozenset(i for i in wide if attributes[i].type.name == "bytea")
    select += [f"octet_length(c{i})" if i in binary else f"length(c{i}::text)" for i in wide]
    # The newline keeps a trailing "-- comment" in the read from swallowing the parenthesis.
    sql = f"SELECT {', '.join(select)} FROM (\n{checked.sql}\n) AS pgbot_read({', '.join(inner)})"
    return BoundedSelect(sql=sql, wide=wide, binary=binary)

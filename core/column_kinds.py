"""What kind of value each result column holds, so values can be shown for people (core.display).

From the Postgres type when the query was prepared (asyncpg names it: ``int8``, ``numeric``, ``jsonb``,
``int4[]``), else from the Python values themselves (tables pgbot builds, such as ``/tables``). JSON and
money arrive as text from asyncpg, so only the type tells them apart from text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Sequence

INT, NUMERIC, FLOAT, MONEY, BOOL = "int", "numeric", "float", "money", "bool"
TIMESTAMPTZ, TIMESTAMP, DATE, TIME, TIMETZ, INTERVAL = "timestamptz", "timestamp", "date", "time", "timetz", "interval"
JSON, UUID, BYTEA, ARRAY, TEXT = "json", "uuid", "bytea", "array", "text"

NUMBERS = frozenset({INT, NUMERIC, FLOAT, MONEY})
RIGHT_ALIGNED = NUMBERS | {INTERVAL}

_BY_TYPE = {
    "int2": INT, "int4": INT, "int8": INT, "oid": INT, "xid": INT, "numeric": NUMERIC, "float4": FLOAT,
    "float8": FLOAT, "money": MONEY, "bool": BOOL, "timestamptz": TIMESTAMPTZ, "timestamp": TIMESTAMP,
    "date": DATE, "time": TIME, "timetz": TIMETZ, "interval": INTERVAL, "json": JSON, "jsonb": JSON,
    "uuid": UUID, "bytea": BYTEA,
}


def kind_of_type(type_name: str) -> str:
    """``int8`` → int, ``jsonb`` → json, ``text[]`` → array; anything else is text."""
    if type_name.endswith("[]") or type_name.startswith("_"):
        return ARRAY
    return _BY_TYPE.get(type_name, TEXT)


def kind_of_value(value: object) -> str | None:
    """The kind a Python value implies (None for NULL: it says nothing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, decimal.Decimal):
        return NUMERIC
    if isinstance(value, dt.datetime):
        return TIMESTAMPTZ if value.tzinfo is not None else TIMESTAMP
    if isinstance(value, dt.date):
        return DATE
    if isinstance(value, dt.time):
        return TIMETZ if value.tzinfo is not None else TIME
    if isinstance(value, dt.timedelta):
        return INTERVAL
    if isinstance(value, uuid.UUID):
        return UUID
    if isinstance(value, bytes | bytearray | memoryview):
        return BYTEA
    if isinstance(value, list | tuple):
        return ARRAY
    if isinstance(value, dict):
        return JSON
    return TEXT


def column_kinds(
    width: int, rows: Sequence[Sequence[object]], *, types: Sequence[str] | None = None
) -> tuple[str, ...]:
    """One kind per column: from ``types`` when given (and complete), else the first non-NULL value's."""
    if types is not None and len(types) == width:
        return tuple(kind_of_type(t) for t in types)
    kinds: list[str] = []
    for index in range(width):
        found = next((k for row in rows if index < len(row) and (k := kind_of_value(row[index])) is not None), None)
        kinds.append(found or TEXT)
    return tuple(kinds)

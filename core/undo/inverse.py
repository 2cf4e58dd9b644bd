"""The inverse of a change, row by row: shown to approvers as SQL, run from the kept rows.

Each row is put back only if it is still exactly as the change left it: the current row is locked
(``FOR UPDATE``) and compared column by column with the kept "after" row, both read back through
``row_to_json`` in the same session, so types without ``=`` (json, xml, point) compare as their text and
nothing changed since is overwritten. A deleted row comes back only if its key (or another unique value) is
free: ``INSERT … ON CONFLICT DO NOTHING``. Rows not put back are listed with why.

What runs is not the SQL shown (that shows values for people to read, cut when long): it is the statements
below, with each kept row passed as a parameter; the card's hash pins the kept rows (``UndoRecord.digest``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from core.db.postgres import SQL_TAG, quote_ident
from core.errors import PgbotError
from core.undo.store import UndoRecord

SHOWN_ROWS = 20  # rows spelled out in the undo card's SQL; the rest are counted
SHOWN_VALUE = 80  # characters of one value there


@dataclass(frozen=True, slots=True)
class Skipped:
    key: str  # the key as people read it: id=4
    why: str


@dataclass(frozen=True, slots=True)
class Applied:
    restored: int
    skipped: tuple[Skipped, ...]


def table_name(record: UndoRecord) -> str:
    return f"{quote_ident(record.schema_name or '')}.{quote_ident(record.table_name or '')}"


def key_text(record: UndoRecord, key: str) -> str:
    """``id=4`` or ``(region, day)=('EU', '2024-01-01')``."""
    try:
        values = json.loads(key, parse_float=Decimal)
    except ValueError:
        values = [key]
    shown = [_literal(v) for v in values]
    if len(record.key_columns) == 1:
        return f"{record.key_columns[0]}={shown[0]}"
    return f"({', '.join(record.key_columns)})=({', '.join(shown)})"


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > SHOWN_VALUE:
        text = text[:SHOWN_VALUE] + "…"
    return "'" + text.replace("'", "''") + "'"


def _row(image: str | None) -> dict[str, object]:
    if image is None:
        return {}
    loaded = json.loads(image, parse_float=Decimal)  # 9.50 stays 9.50, as Postgres wrote it
    return loaded if isinstance(loaded, dict) else {}


def _where(record: UndoRecord, row: dict[str, object]) -> str:
    return " AND ".join(f"{quote_ident(k)} = {_literal(row.get(k))}" for k in record.key_columns)


def shown_sql(record: UndoRecord, *, undo_id: str) -> str:
    """The inverse as SQL people can read (values cut at SHOWN_VALUE characters, SHOWN_ROWS rows)."""
    table = table_name(record)
    lines = [f"-- Undo of change {record.action_id} ({record.kind.upper()} on {record.qualified}), as change "
             f"{undo_id}: each row only if it is still as that change left it; rows changed since are skipped."]
    writable = [c for c in record.columns if c not in record.generated]
    for before, after in list(zip(record.before_rows, record.after_rows, strict=True))[:SHOWN_ROWS]:
        old, new = _row(before), _row(after)
        if record.kind == "insert":
            lines.append(f"DELETE FROM {table} WHERE {_where(record, new)};")
        elif record.kind == "delete":
            cols = ", ".join(quote_ident(c) for c in writable)
            values = ", ".join(_literal(old.get(c)) for c in writable)
            lines.append(f"INSERT INTO {table} ({cols}) VALUES ({values});")
        else:
            changed = [c for c in writable if old.get(c) != new.get(c)] or writable[:1]
            sets = ", ".join(f"{quote_ident(c)} = {_literal(old.get(c))}" for c in changed)
            lines.append(f"UPDATE {table} SET {sets} WHERE {_where(record, old)};")
    more = len(record.keys) - SHOWN_ROWS
    if more > 0:
        lines.append(f"-- … and {more} more row{'s' if more != 1 else ''} the same way.")
    return "\n".join(lines)


async def apply(conn: asyncpg.Connection, record: UndoRecord) -> Applied:
    """Put back every row still as the change left it, on ``conn`` (its transaction, the change's role)."""
    table = table_name(record)
    await same_table(conn, record, table)
    keys = " AND ".join(f"t.{quote_ident(k)} = a.{quote_ident(k)}" for k in record.key_columns)
    lookup = (f"SELECT pg_catalog.row_to_json(t.*)::text = pg_catalog.row_to_json(a.*)::text FROM {table} AS t, "
              f"pg_catalog.json_populate_record(NULL::{table}, $1::json) AS a WHERE {keys} FOR UPDATE OF t")
    restored, skipped = 0, []
    for key, before, after in zip(record.keys, record.before_rows, record.after_rows, strict=True):
        if record.kind == "delete":
            assert before is not None
            if await _insert(conn, record, table, before):
                restored += 1
            else:
                skipped.append(Skipped(key_text(record, key), "a row with this key (or another unique value) "
                                                              "exists again"))
            continue
        assert after is not None
        same = await conn.fetchval(SQL_TAG + lookup, after)
        if same is None:
            skipped.append(Skipped(key_text(record, key), "deleted since"))
        elif not same:
            skipped.append(Skipped(key_text(record, key), "changed since"))
        elif record.kind == "insert":
            await conn.execute(f"{SQL_TAG}DELETE FROM {table} AS t USING pg_catalog.json_populate_record("
                               f"NULL::{table}, $1::json) AS a WHERE {keys}", after)
            restored += 1
        else:
            assert before is not None
            await _update(conn, record, table, keys, before, after)
            restored += 1
    return Applied(restored=restored, skipped=tuple(skipped))


async def same_table(conn: asyncpg.Connection, record: UndoRecord, table: str) -> None:
    """The table the change touched, with the same columns: else its kept rows no longer fit."""
    found = await conn.fetchval("SELECT pg_catalog.to_regclass($1)::oid", table)
    if found is None or int(found) != record.relation:
        raise PgbotError(f"{record.qualified} was dropped or replaced since change {record.action_id}, so it "
                         "cannot be undone; nothing was changed.")
    columns = await conn.fetch("SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attnum > 0 "
                               "AND NOT attisdropped ORDER BY attnum", found)
    if tuple(str(c["attname"]) for c in columns) != record.columns:
        raise PgbotError(f"The columns of {record.qualified} changed since change {record.action_id} (ALTER "
                         "TABLE), so its kept rows no longer fit and it cannot be undone; nothing was changed.")


async def _insert(conn: asyncpg.Connection, record: UndoRecord, table: str, before: str) -> bool:
    writable = [quote_ident(c) for c in record.columns if c not in record.generated]
    cols = ", ".join(writable)
    put = await conn.fetchval(
        f"{SQL_TAG}INSERT INTO {table} ({cols}) OVERRIDING SYSTEM VALUE SELECT {', '.join('b.' + c for c in writable)} "
        f"FROM pg_catalog.json_populate_record(NULL::{table}, $1::json) AS b ON CONFLICT DO NOTHING RETURNING 1",
        before)
    return put is not None


async def _update(conn: asyncpg.Connection, record: UndoRecord, table: str, keys: str, before: str,
                  after: str) -> None:
    """Only the columns the change changed (their text differs), so column privileges that allowed the change
    allow its undo."""
    changed = await conn.fetchval(
        "SELECT coalesce(array_agg(b.key), '{}') FROM pg_catalog.json_each($1::json) b "
        "JOIN pg_catalog.json_each($2::json) a USING (key) WHERE b.value::text IS DISTINCT FROM a.value::text",
        before, after)
    columns = [c for c in changed if c in record.columns and c not in record.generated]
    if not columns:
        return
    sets = ", ".join(f"{quote_ident(c)} = a.{quote_ident(c)}" for c in columns)
    await conn.execute(f"{SQL_TAG}UPDATE {table} AS t SET {sets} FROM pg_catalog.json_populate_record("
                       f"NULL::{table}, $1::json) AS a WHERE {keys}", before)

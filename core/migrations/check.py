"""Try a migration before anyone approves it: up, then down, in one transaction that is always rolled back.

The schema is fingerprinted (pg_catalog: relations, columns with types, nullability and defaults, indexes,
constraints, views, types, functions, triggers, privileges) before up and after down; a down that does not
bring back exactly the schema it started from is refused, naming what differs. Column order and OIDs are
left out: re-adding a dropped column is the best a down can do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import LiteralString

import asyncpg

from core.db.base import PostgresDatabase
from core.db.postgres import SQL_TAG

_USER_SCHEMAS: LiteralString = ("n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgbot') "
                                "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'")
FINGERPRINT_QUERIES: dict[str, LiteralString] = {
    "schema": f"SELECT n.nspname FROM pg_namespace n WHERE {_USER_SCHEMAS}",
    "relation": "SELECT format('%s.%s (%s%s) %s', n.nspname, c.relname, c.relkind::text, c.relpersistence::text, "
                "coalesce(c.relacl::text, '')) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE {_USER_SCHEMAS} AND c.relkind <> 'i'",
    "column": "SELECT format('%s.%s.%s %s%s%s%s%s', n.nspname, c.relname, a.attname, "
              "format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END, "
              "' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), ' IDENTITY ' || nullif(a.attidentity::text, ''), "
              "' GENERATED ' || nullif(a.attgenerated::text, '')) "
              "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
              "JOIN pg_namespace n ON n.oid = c.relnamespace "
              "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
              f"WHERE {_USER_SCHEMAS} AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind <> 'i'",
    "index": "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
             f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS}",
    "constraint": "SELECT format('%s on %s: %s', co.conname, coalesce(nullif(co.conrelid, 0)::regclass::text, "
                  "co.contypid::regtype::text), pg_get_constraintdef(co.oid)) FROM pg_constraint co "
                  f"JOIN pg_namespace n ON n.oid = co.connamespace WHERE {_USER_SCHEMAS}",
    "view": "SELECT format('%s.%s: %s', n.nspname, c.relname, pg_get_viewdef(c.oid)) FROM pg_class c "
            f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS} AND c.relkind IN ('v', 'm')",
    "type": "SELECT format('%s.%s (%s) %s', n.nspname, t.typname, t.typtype::text, coalesce((SELECT string_agg("
            "e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '')) "
            f"FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {_USER_SCHEMAS} "
            "AND t.typtype IN ('e', 'd', 'c', 'r') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class "
            "WHERE oid = t.typrelid) = 'c')",
    "function": "SELECT format('%s.%s(%s) %s', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), "
                "md5(coalesce(p.prosrc, ''))) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                f"WHERE {_USER_SCHEMAS}",
    "trigger": "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
               f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS} AND NOT t.tgisinternal",
}

Fingerprint = dict[str, frozenset[str]]


async def fingerprint(conn: asyncpg.Connection) -> Fingerprint:
    """The schema as sets of one-line descriptions per kind of object (comparable, and diffable in words)."""
    return {kind: frozenset(str(r[0]) for r in await conn.fetch(sql)) for kind, sql in FINGERPRINT_QUERIES.items()}


def differences(before: Fingerprint, after: Fingerprint, *, limit: int = 8) -> list[str]:
    """What ``after`` has that ``before`` had not, and the reverse, in words."""
    lines = []
    for kind in FINGERPRINT_QUERIES:
        lines += [f"{kind} still present: {item}" for item in sorted(after[kind] - before[kind])]
        lines += [f"{kind} missing: {item}" for item in sorted(before[kind] - after[kind])]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


class StepFailed(Exception):
    """A statement of the check failed; carries which one, for a message the model can act on."""

    def __init__(self, direction: str, number: int, sql: str, error: asyncpg.PostgresError) -> None:
        self.direction, self.number, self.sql, self.error = direction, number, sql, error
        message = getattr(error, "message", None) or str(error)
        detail = getattr(error, "detail", None)
        self.message = message + (f" ({detail})" if detail else "")
        super().__init__(self.message)

    @property
    def sqlstate(self) -> str:
        return str(getattr(self.error, "sqlstate", "") or "")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Whether down undid up; ``changed`` says up changed the schema at all (a data-only migration does not)."""

    undone: bool
    changed: bool
    leftovers: tuple[str, ...] = ()


async def try_up_and_down(db: PostgresDatabase, *, up: Sequence[str], down: Sequence[str],
                          role: str | None) -> CheckResult:
    """Run up then down as ``role`` in a transaction that is always rolled back; raise StepFailed on an error."""

    async def work(conn: asyncpg.Connection) -> CheckResult:
        before = await fingerprint(conn)
        await _run(conn, "up", up)
        middle = await fingerprint(conn)
        await _run(conn, "down", down)
        after = await fingerprint(conn)
        return CheckResult(undone=after == before, changed=middle != before,
                           leftovers=tuple(differences(before, after)))

    return await db.run(work, role=role, read_only=False, rollback=True)


async def _run(conn: asyncpg.Connection, direction: str, statements: Sequence[str]) -> None:
    for number, sql in enumerate(statements, 1):
        try:
            await conn.execute(SQL_TAG + sql)
        except asyncpg.PostgresError as exc:
            raise StepFailed(direction, number, sql, exc) from exc

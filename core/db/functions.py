"""The read path's function allow-list, decided against the database's own ``pg_proc``.

Why an allow-list: a deny list of names is never complete. ``ts_rewrite(q, 'SELECT …')`` runs its text as a
query, and inside it ``set_config('role', …)`` switches the session's role; any user function running dynamic
SQL (an ``exec_sql(text)`` helper, executable by PUBLIC by default) does the same. So a read may call:

- a ``pg_catalog`` (or ``information_schema``) function Postgres marks IMMUTABLE or STABLE, except the few
  of those that run a query of their own (``table_to_xml`` and friends); plus the VOLATILE ones in
  :data:`SAFE_VOLATILE`, which only read (``random``, ``clock_timestamp``, ``pg_relation_size``, …);
- a function in any other schema only when ``[databases.NAME] allowed_functions`` names it.

Why the catalog, and why in the statement's own transaction: Postgres resolves an unqualified name through
``search_path`` and overload resolution, so ``lower(x)`` may run ``public.lower(integer)`` instead of the
built-in. Every function of that name the database holds (in any schema, for the arity used) must therefore
be allowed; the lookup runs in the same snapshot, as the same role, just before the statement, so nothing
created in between can slip through. Operators are functions by another name and are checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from core.errors import GuardError
from core.sqlguard import Classification, FunctionCall

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})

# STABLE in pg_catalog, yet each runs a query (through SPI) built from its arguments.
RUNS_QUERIES = frozenset({
    "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
    "schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
    "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
    "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
    "ts_stat",
})

# VOLATILE in pg_catalog but read-only: random values, the clock, sizes, replication and lock status.
SAFE_VOLATILE = frozenset({
    "random", "random_normal", "gen_random_uuid", "clock_timestamp", "timeofday", "currval", "lastval",
    "current_query", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
    "pg_database_size", "pg_relation_size", "pg_table_size", "pg_indexes_size", "pg_total_relation_size",
    "pg_tablespace_size", "pg_sequence_last_value", "pg_partition_tree", "pg_partition_ancestors",
    "pg_blocking_pids", "pg_safe_snapshot_blocking_pids", "pg_lock_status", "pg_notification_queue_usage",
    "pg_is_in_recovery", "pg_is_wal_replay_paused", "pg_get_wal_replay_pause_state", "pg_current_wal_lsn",
    "pg_current_wal_flush_lsn", "pg_current_wal_insert_lsn", "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp", "pg_xact_commit_timestamp", "pg_xact_status", "txid_status",
    "pg_jit_available", "pg_stat_have_stats", "pg_collation_actual_version", "pg_database_collation_actual_version",
})

# Every function, and every operator's function, named by the statement: one indexed lookup. Operators
# whose function is a built-in that never needs refusing (IMMUTABLE or STABLE, not in RUNS_QUERIES) are left
# out in the query: ``=`` alone has ~60 of them, and decoding and judging them was most of this check's CPU.
LOOKUP_SQL = """
SELECT 'f' AS kind, n.nspname AS via_schema, p.proname AS via_name, n.nspname AS schema, p.proname AS name,
       p.oid::regprocedure::text AS signature, p.provolatile::text AS volatility, p.pronargs AS nargs,
       p.pronargdefaults AS ndefaults, p.provariadic <> 0 AS variadic,
       coalesce((SELECT t.typtype IN ('c', 'p') FROM pg_type t WHERE t.oid = p.proargtypes[0]), false) AS row_arg
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = ANY($1::text[])
UNION ALL
SELECT 'o', opn.nspname, o.oprname, n.nspname, p.proname, p.oid::regprocedure::text, p.provolatile::text,
       p.pronargs, p.pronargdefaults, false, false
FROM pg_operator o JOIN pg_namespace opn ON opn.oid = o.oprnamespace
JOIN pg_proc p ON p.oid = o.oprcode JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE o.oprname = ANY($2::text[])
  AND NOT (n.nspname = ANY($3::text[]) AND p.provolatile <> 'v' AND p.proname <> ALL($4::text[]))
"""

_SYSTEM_SCHEMAS = sorted(SYSTEM_SCHEMAS)
_RUNS_QUERIES = sorted(RUNS_QUERIES)


@dataclass(frozen=True, slots=True)
class _Proc:
    kind: str  # "f" a function by its name, "o" the function behind an operator
    via_schema: str
    via_name: str
    schema: str
    name: str
    signature: str
    volatility: str
    nargs: int
    ndefaults: int
    variadic: bool
    row_arg: bool


class AllowedFunctions:
    """``[databases.NAME] allowed_functions``: "schema.name", "schema.*", or "name" (= pg_catalog.name)."""

    def __init__(self, entries: Iterable[str]) -> None:
        names: set[tuple[str, str]] = set()
        for entry in entries:
            schema, _, name = entry.strip().lower().rpartition(".")
            names.add((schema or "pg_catalog", name))
        self._names = frozenset(names)

    def allows(self, schema: str, name: str) -> bool:
        schema, name = schema.lower(), name.lower()
        return (schema, name) in self._names or (schema, "*") in self._names


def _arity_fits(proc: _Proc, call: FunctionCall) -> bool:
    if call.nargs is None:
        return True
    if call.via == "row" and not proc.row_arg:
        return False
    low = proc.nargs - proc.ndefaults
    return low <= call.nargs <= proc.nargs or (proc.variadic and call.nargs >= proc.nargs - 1)


def _problem(proc: _Proc, allowed: AllowedFunctions) -> str | None:
    """Why this function may not run on the read path ("is …", said of the function), or None."""
    if allowed.allows(proc.schema, proc.name):
        return None
    if proc.schema in SYSTEM_SCHEMAS:
        if proc.name in RUNS_QUERIES:
            return "runs a query of its own, which pgbot cannot check"
        if proc.volatility == "v" and proc.name not in SAFE_VOLATILE:
            return "is VOLATILE: it may change settings, roles or data, or run a query, so reads may not call it"
        return None
    return f"is a function in schema {proc.schema}, not on the list of functions reads may call"


def refusal(classification: Classification, procs: Sequence[_Proc], *, allowed: AllowedFunctions,
            database: str) -> str | None:
    """The refusal for a read calling anything not allowed (None: every call is allowed). Pure: unit-tested."""
    functions = [p for p in procs if p.kind == "f"]
    for call in classification.calls:
        same = [p for p in functions if p.name == call.name and (call.schema is None or p.schema == call.schema)]
        fits = [p for p in same if _arity_fits(p, call)]
        if not fits and call.via != "call":
            continue  # (x).f or alias.f with no such function: a column, not a call
        for proc in fits or same:
            why = _problem(proc, allowed)
            if why is not None:
                text = f"{call.display}() is not allowed on the read path: {_signature(proc)} {why}."
                return text + _advice(proc, same, database=database)
    for schema, name in classification.operators:
        for proc in procs:
            if proc.kind != "o" or proc.via_name != name or (schema is not None and proc.via_schema != schema):
                continue
            why = _problem(proc, allowed)
            if why is not None:
                text = f"Operator {name} is not allowed on the read path: it runs {_signature(proc)}, which {why}."
                return text + _advice(proc, [], database=database)
    return None


def _signature(proc: _Proc) -> str:
    """Always schema-qualified (regprocedure leaves out schemas on the search path)."""
    head, _, args = proc.signature.partition("(")
    return f"{proc.schema}.{head.rsplit('.', 1)[-1]}({args}"


def _advice(proc: _Proc, same: Sequence[_Proc], *, database: str) -> str:
    if proc.schema in SYSTEM_SCHEMAS:
        return ""
    text = ""
    if any(p.schema == "pg_catalog" for p in same):
        text += (f" Postgres could pick it instead of the built-in pg_catalog.{proc.name}; write "
                 f"pg_catalog.{proc.name}(…) to call the built-in.")
    return text + (f" If an admin trusts it, they can allow it in the configuration: [databases.{database}] "
                   f'allowed_functions = ["{proc.schema}.{proc.name}"].')


async def check_functions(conn: asyncpg.Connection, classification: Classification, *,
                          allowed: AllowedFunctions, database: str) -> None:
    """Raise GuardError unless every function and operator the statement names is allowed (see module doc)."""
    names = sorted({call.name for call in classification.calls})
    operators = sorted({name for _, name in classification.operators})
    if not names and not operators:
        return
    rows = await conn.fetch(LOOKUP_SQL, names, operators, _SYSTEM_SCHEMAS, _RUNS_QUERIES)
    procs = [_Proc(**dict(row)) for row in rows]
    problem = refusal(classification, procs, allowed=allowed, database=database)
    if problem is not None:
        raise GuardError(problem)

"""Index advice for one query: candidate indexes from its shape, measured before anything is built.

With HypoPG installed in the database, each candidate is created as a *hypothetical* index (planner-only,
private to the session) and the query is planned again: the cost drop is the planner's own figure. Without
HypoPG the drop is estimated: the planner's row estimate for the candidate's conditions (EXPLAIN of a probe
query) gives how many rows an index scan would fetch, priced with the server's cost settings against the
sequential scan it would replace. Both run in a READ ONLY transaction that is rolled back; hypothetical
indexes outlive a transaction, so they are always reset before the connection goes back to the pool.

Planning (EXPLAIN, HypoPG) opens the query's tables and their indexes, so it would wait behind an ACCESS
EXCLUSIVE lock: a query on a locked table is not planned at all. The advice names the lock, lists the
candidates to measure once it is released, and still reports the tables' existing indexes from the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog

from core.db.base import PostgresDatabase
from core.db.postgres import SQL_TAG, quote_ident
from core.diagnostics.checks import LockView
from core.diagnostics.explain import classify_for_explain, generic_plan, has_parameters, plan_json, statement_oids
from core.diagnostics.findings import Finding, number, render_findings
from core.diagnostics.index_catalog import TableFacts, table_facts, unused_and_duplicate
from core.diagnostics.plan import Plan, parse_plan
from core.diagnostics.query_shape import QueryShape, TableUse, query_shape
from core.errors import PgbotError
from core.sqlguard import DEFAULT_MAX_SQL_CHARS, SqlGuard

log = structlog.get_logger(__name__)
SMALL_TABLE_ROWS = 1_000  # below this a sequential scan reads a few pages: an index cannot help much
WORTHWHILE_DROP = 0.10  # recommend only candidates that cut the query's cost by at least this share
MAX_CANDIDATES_PER_TABLE = 6
# Scans of the table an index scan on a candidate could replace (a Bitmap Heap Scan's cost includes its
# Bitmap Index Scan child, which names no relation itself).
_SCANS = frozenset({"Seq Scan", "Bitmap Heap Scan", "Index Scan", "Index Only Scan"})


@dataclass(frozen=True, slots=True)
class Candidate:
    table: str  # schema.table
    columns: tuple[str, ...]
    reason: str
    predicates: tuple[str, ...] = ()  # constant conditions on these columns (the fallback's probe)
    join_column: str | None = None

    @property
    def target(self) -> str:
        schema, _, table = self.table.partition(".")
        return f"{quote_ident(schema)}.{quote_ident(table)}"

    def ddl(self, *, name: str | None = None) -> str:
        named = f"{quote_ident(name)} " if name else ""
        return f"CREATE INDEX CONCURRENTLY {named}ON {self.target} ({', '.join(quote_ident(c) for c in self.columns)})"


@dataclass(frozen=True, slots=True)
class Measured:
    candidate: Candidate
    cost_after: float
    used: bool  # HypoPG: the plan uses the index; estimate: an index scan beats the scan it replaces

    def drop(self, before: float) -> float:
        return 0.0 if before <= 0 else max(0.0, (before - self.cost_after) / before)


@dataclass(slots=True)
class IndexAdvice:
    database: str
    sql: str
    method: str  # "hypopg" or "estimate"
    cost_before: float
    measured: list[Measured] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    existing: list[Finding] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # the locks that kept the query from being planned
    unmeasured: list[Candidate] = field(default_factory=list)  # candidates to measure once they are gone

    @property
    def recommended(self) -> list[Measured]:
        return [m for m in self.measured if m.used and m.drop(self.cost_before) >= WORTHWHILE_DROP]

    def render(self) -> str:
        how = ("measured with HypoPG hypothetical indexes (the planner's own costs)" if self.method == "hypopg"
               else "estimated from the planner's row estimates for each candidate's conditions (HypoPG is not "
                    "installed in this database, so these are estimates, not measurements)")
        if self.blocked:
            return self._render_blocked()
        lines = [f"Index advice on '{self.database}', {how}.", f"Query cost now: {number(self.cost_before)}."]
        best = self.recommended
        if best:
            lines.append("Recommended (best first):")
            for i, m in enumerate(best, 1):
                lines.append(f"{i}. {m.candidate.ddl()}: cost {number(self.cost_before)} → {number(m.cost_after)} "
                             f"(−{m.drop(self.cost_before):.0%}); {m.candidate.reason}.")
        else:
            lines.append("No candidate index would make this query noticeably cheaper.")
        others = [m for m in self.measured if m not in best]
        if others:
            lines.append("Tried and not worth it: " + "; ".join(
                f"({', '.join(m.candidate.columns)}) on {m.candidate.table} → {number(m.cost_after)}"
                + ("" if m.used else ", not used by the plan") for m in others) + ".")
        lines.extend(self.notes)
        existing = render_findings(self.existing)
        if existing:
            lines.append("Existing indexes on these tables:\n" + existing)
        if best:
            lines.append("Nothing was built. Building one is a change: it needs approval and runs CREATE INDEX "
                         "CONCURRENTLY (reads and writes continue while it builds).")
        return "\n".join(lines)

    def _render_blocked(self) -> str:
        lines = [f"Index advice on '{self.database}': this query cannot be planned right now, so nothing was "
                 f"measured: {'; '.join(self.blocked)}. Planning needs a lock that waits behind that one; ask again "
                 "once it is released."]
        if self.unmeasured:
            lines.append("Candidates to measure then: " + "; ".join(
                f"({', '.join(c.columns)}) on {c.table}, {c.reason}" for c in self.unmeasured) + ".")
        lines.extend(self.notes)
        existing = render_findings(self.existing)
        if existing:
            lines.append("Existing indexes on these tables (from the catalog):\n" + existing)
        return "\n".join(lines)


def candidates(use: TableUse, facts: TableFacts) -> tuple[list[Candidate], list[str]]:
    """Single and composite candidates (equality columns first, then one range or sort column), minus
    those an existing index already serves. Returns them and notes on what was skipped and why."""
    known = set(facts.columns)
    eq = [c for c in use.eq if c in known]
    rng = [c for c in use.range if c in known and c not in eq]
    join = [c for c in use.join if c in known]
    order = [c for c in use.order if c in known]

    def preds(columns: Sequence[str]) -> tuple[str, ...]:
        return tuple(p for c in columns for p in use.predicates.get(c, ()))

    found: list[Candidate] = []
    for col in eq:
        found.append(Candidate(facts.name, (col,), f"equality filter on {col}", preds([col])))
    if rng:
        found.append(Candidate(facts.name, (rng[0],), f"range filter on {rng[0]}", preds([rng[0]])))
    if len(eq) > 1:
        found.append(Candidate(facts.name, tuple(eq[:3]), "equality filters together", preds(eq[:3])))
    if eq and rng:
        cols = (*eq[:3], rng[0])
        found.append(Candidate(facts.name, cols, "equality filters, then the range filter", preds(cols)))
    if eq and order and order[0] not in eq:
        cols = (*eq[:3], order[0])
        found.append(Candidate(facts.name, cols, f"filter, then rows already sorted by {order[0]}", preds(eq[:3])))
    for col in join:
        found.append(Candidate(facts.name, (col,), f"join on {col}", join_column=col))
    unique: list[Candidate] = []
    notes: list[str] = []
    for cand in found:
        if any(c.columns == cand.columns for c in unique):
            continue
        covering = next((ix for ix in facts.indexes if ix.covers(cand.columns)), None)
        if covering is not None:
            notes.append(f"({', '.join(cand.columns)}) on {facts.name} is already served by index {covering.name}.")
            continue
        unique.append(cand)
    return unique[:MAX_CANDIDATES_PER_TABLE], notes


def _resolve(shape: QueryShape, facts: dict[str, TableFacts]) -> None:
    """Unqualified columns in a multi-table query: give each to the one table that has it."""
    for kind, column, predicate in shape.unresolved:
        owners = [use for use in shape.tables if use.alias in facts and column in facts[use.alias].columns]
        if len(owners) == 1:
            owners[0].add(kind, column, predicate)


async def advise(db: PostgresDatabase, guard: SqlGuard, sql: str, *, role: str | None) -> IndexAdvice:
    """Candidates for ``sql`` measured as ``role``; raises GuardError when the query cannot be planned."""
    checked = classify_for_explain(guard, sql)
    shape = query_shape(checked.sql)

    async def work(conn: asyncpg.Connection) -> IndexAdvice:
        view = await LockView.read(conn)
        facts: dict[str, TableFacts] = {}
        for use in shape.tables:
            found = await table_facts(conn, use.relation, locks=view.locks)
            if found is not None:
                facts[use.alias] = found
        _resolve(shape, facts)
        hypopg = await _hypopg_available(conn)
        advice = IndexAdvice(database=db.name, sql=checked.sql, method="hypopg" if hypopg else "estimate",
                             cost_before=0.0)
        pool: list[Candidate] = []
        for use in shape.tables:
            table = facts.get(use.alias)
            if table is None:
                continue
            if table.rows < SMALL_TABLE_ROWS:
                advice.notes.append(f"{table.name} has ~{number(table.rows)} rows: too small for an index to matter.")
                continue
            proposed, notes = candidates(use, table)
            pool.extend(proposed)
            advice.notes.extend(notes)
        if not shape.tables or not facts:
            advice.notes.append("The query reads no table pgbot could look up, so there is nothing to index.")
        oids = sorted({f.oid for f in facts.values()})
        blocked = await _measure_unless_locked(conn, view, [*oids, *await statement_oids(conn, checked.sql)],
                                               advice, pool, facts, hypopg=hypopg)
        if blocked:
            advice.blocked, advice.measured, advice.unmeasured = blocked, [], pool
        if oids:
            advice.existing = await unused_and_duplicate(conn, view=view, tables=oids)
        return advice

    # Planning runs IMMUTABLE functions with constant arguments: a read's functions pass the catalog check first.
    guarded = checked if checked.path == "read" else None
    return await db.run(work, role=role, read_only=True, rollback=True, guarded=guarded)


async def _measure_unless_locked(conn: asyncpg.Connection, view: LockView, relations: list[int], advice: IndexAdvice,
                                 pool: list[Candidate], facts: dict[str, TableFacts], *, hypopg: bool) -> list[str]:
    """Measure, unless planning would wait on a lock: then the locks in the way, described."""
    blocked = [lock.describe() for lock in view.locks.on(relations)]
    if blocked:
        return blocked
    try:
        async with conn.transaction():  # a savepoint: a lock met while planning leaves the rest usable
            await _measure(conn, advice, pool, facts, hypopg=hypopg)
    except asyncpg.LockNotAvailableError:  # a lock taken since the look, or on a table behind a view
        await view.refresh(conn)
        return ([lock.describe() for lock in view.locks.on(relations) or view.locks.reported()]
                or ["a relation it reads was locked (lock_timeout)"])
    return []


async def _measure(conn: asyncpg.Connection, advice: IndexAdvice, pool: list[Candidate],
                   facts: dict[str, TableFacts], *, hypopg: bool) -> None:
    """The query's cost now, and with each candidate (HypoPG, else the estimate)."""
    types: list[str] = []
    if has_parameters(advice.sql):
        document, types = await generic_plan(conn, advice.sql)
        base = parse_plan(document)
    else:
        base = parse_plan(await plan_json(conn, advice.sql, analyze=False))
    advice.cost_before = base.total_cost
    if hypopg:
        advice.measured = await _measure_hypopg(conn, advice.sql, pool)
    else:
        advice.measured = await _measure_estimate(conn, base, pool, facts, types)
    advice.measured.sort(key=lambda m: (m.cost_after, len(m.candidate.columns)))


async def _hypopg_available(conn: asyncpg.Connection) -> bool:
    found = await conn.fetchval("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'hypopg'")
    return found is not None


async def _measure_hypopg(conn: asyncpg.Connection, sql: str, pool: list[Candidate]) -> list[Measured]:
    measured: list[Measured] = []
    try:
        async with conn.transaction():  # a savepoint: an error here still lets the reset below run
            for cand in pool:
                created = await conn.fetchrow(f"{SQL_TAG}SELECT indexrelid, indexname FROM hypopg_create_index($1)",
                                              cand.ddl().replace(" CONCURRENTLY", ""))
                plan = parse_plan(await plan_json(conn, sql, analyze=False))
                measured.append(Measured(cand, plan.total_cost, used=plan.uses_index(f"<{created['indexrelid']}>")))
                await conn.execute("SELECT hypopg_drop_index($1)", created["indexrelid"])
    finally:
        await conn.execute("SELECT hypopg_reset()")
    return measured


async def _measure_estimate(conn: asyncpg.Connection, base: Plan, pool: list[Candidate],
                            facts: dict[str, TableFacts], types: Sequence[str]) -> list[Measured]:
    settings = await conn.fetchrow(
        "SELECT current_setting('random_page_cost')::float8 AS random_page, "
        "current_setting('cpu_tuple_cost')::float8 AS cpu_tuple, "
        "current_setting('cpu_index_tuple_cost')::float8 AS cpu_index_tuple, "
        "current_setting('cpu_operator_cost')::float8 AS cpu_operator")
    by_name = {f.name: f for f in facts.values()}
    measured: list[Measured] = []
    for cand in pool:
        table = by_name[cand.table]
        scan_cost = sum(n.total_cost for n in base.nodes() if n.node_type in _SCANS and n.relation == table.name)
        rows = await _matching_rows(conn, cand, table, types)
        if rows is None or scan_cost == 0:
            measured.append(Measured(cand, base.total_cost, used=False))
            continue
        pages = min(rows, float(max(table.pages, 1)))
        height = max(1.0, math.log(max(table.rows, 2.0), 256))
        index_cost = (settings["random_page"] * (pages + height)
                      + rows * (settings["cpu_index_tuple"] + settings["cpu_tuple"] + settings["cpu_operator"]))
        cheaper = index_cost < scan_cost
        after = base.total_cost - scan_cost + min(index_cost, scan_cost)
        measured.append(Measured(cand, after, used=cheaper))
    return measured


async def _matching_rows(conn: asyncpg.Connection, cand: Candidate, table: TableFacts,
                         types: Sequence[str]) -> float | None:
    """Rows an index on the candidate would fetch, by the planner's own estimate."""
    if cand.join_column is not None:
        n_distinct: float | None = await conn.fetchval(
            "SELECT n_distinct::float8 FROM pg_stats WHERE schemaname || '.' || tablename = $1 AND attname = $2",
            table.name, cand.join_column)
        if n_distinct is None or n_distinct == 0:
            return None
        distinct = -n_distinct * table.rows if n_distinct < 0 else n_distinct
        return table.rows / max(distinct, 1.0)
    if not cand.predicates:
        return None
    alias = _alias_for(cand)
    probe = (f"SELECT 1 FROM {cand.target} AS {quote_ident(alias)} "
             f"WHERE {' AND '.join(cand.predicates)}")
    try:
        async with conn.transaction():
            plan = parse_plan(await plan_json(conn, probe, analyze=False, parameter_types=types))
    except asyncpg.LockNotAvailableError:
        raise  # the caller names the lock; the other probes would wait on it too
    except asyncpg.PostgresError as exc:  # e.g. a condition naming another table's alias
        log.info("index_probe_failed", error=type(exc).__name__)
        return None
    rows: float = plan.root.plan_rows
    return rows


def _alias_for(cand: Candidate) -> str:
    """The alias the candidate's conditions were written with (``o.status = 'x'`` → ``o``), else the table."""
    for predicate in cand.predicates:
        head = predicate.split(" ", 1)[0]
        if "." in head and head.split(".")[-1] in cand.columns:
            return head.rsplit(".", 1)[0].strip('"')
    return cand.table.rsplit(".", 1)[-1]


async def top_statements(db: PostgresDatabase, *, role: str | None, limit: int = 3,
                         max_chars: int = DEFAULT_MAX_SQL_CHARS) -> list[str]:
    """The costliest statements pg_stat_statements recorded here (reads, updates, deletes), for advice without
    a query; a PgbotError saying how to enable the extension when it is absent.

    Query texts there have no length limit: each is cut in SQL to ``max_chars + 1``, so an overlong one never
    reaches Python whole, and the guard then refuses it by length (the caller skips it) before parsing.
    """

    async def work(conn: asyncpg.Connection) -> list[str] | None:
        schema = await conn.fetchval(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if schema is None:
            return None
        rows = await conn.fetch(
            f"{SQL_TAG}SELECT left(query, {int(max_chars) + 1}) AS query FROM {schema}.pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query ~* '^\\s*(select|with|update|delete)' AND query !~* 'pg_stat_statements|pg_catalog' "
            "ORDER BY total_exec_time DESC LIMIT $1", limit)
        return [r["query"] for r in rows]

    found = await db.run(work, role=role, read_only=True)
    if found is None:
        raise PgbotError("pg_stat_statements is not installed in this database, so there are no top queries to "
                         "advise on; pass the slow query. (To enable it: add pg_stat_statements to "
                         "shared_preload_libraries, restart the server, then CREATE EXTENSION pg_stat_statements.)")
    if not found:
        raise PgbotError("pg_stat_statements has recorded no queries in this database yet; pass the slow query.")
    return found

"""The health check: a set of independent read-only checks, each turned into findings.

Each check runs in its own savepoint inside one READ ONLY transaction (:mod:`core.diagnostics.checks`), so a
view the role may not read (``pg_stat_statements`` of other users, ``pg_stat_activity`` query texts) becomes a
finding that says which privilege is missing, and a check that fails is that check's finding, instead of
failing the whole report. Locked relations are read first and reported; checks then take their sizes and
definitions from the catalog, so a health check run during an incident answers without waiting on the lock.
Everything here is visible with ``pg_monitor``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from core.db.base import PostgresDatabase
from core.diagnostics.checks import PRIVILEGE_HINT, LockAwareCheck, LockView, run_isolated
from core.diagnostics.findings import Finding, Severity, duration_s, number, render_findings, size
from core.diagnostics.index_catalog import duplicate_indexes, unused_indexes
from core.diagnostics.locks import Locks, locked_finding

__all__ = ["PRIVILEGE_HINT", "HealthReport", "health_check"]
LONG_QUERY_S = 60.0
Check = Callable[[asyncpg.Connection], Awaitable[list[Finding]]]


@dataclass(slots=True)
class HealthReport:
    database: str
    server: str
    findings: list[Finding] = field(default_factory=list)

    def render(self) -> str:
        problems = sum(1 for f in self.findings if f.severity in (Severity.WARNING, Severity.CRITICAL))
        head = (f"Health of '{self.database}' ({self.server}): "
                + (f"{problems} problem{'s' if problems != 1 else ''} found." if problems else "no problems found."))
        return head + "\n" + render_findings(self.findings)

    def checks(self) -> set[str]:
        return {f.check for f in self.findings if f.severity is not Severity.OK}


async def health_check(db: PostgresDatabase, *, role: str | None, long_query_s: float = LONG_QUERY_S,
                       top_queries: int = 5) -> HealthReport:
    """Run every check as ``role`` (read-only) and collect the findings."""

    async def long_running(conn: asyncpg.Connection) -> list[Finding]:
        return await _long_running(conn, long_query_s)

    async def statements(conn: asyncpg.Connection) -> list[Finding]:
        return await _top_statements(conn, top_queries)

    plain: list[tuple[str, Check]] = [
        ("cache hit ratio", _cache_hit), ("connections", _connections), ("blocked sessions", _blocking),
        ("long-running queries", long_running), ("dead rows and vacuum", _vacuum), ("table bloat", _table_bloat),
        ("index bloat", _index_bloat),
    ]

    async def work(conn: asyncpg.Connection) -> HealthReport:
        server = await conn.fetchval("SELECT 'PostgreSQL ' || current_setting('server_version')")
        report = HealthReport(database=db.name, server=server)
        view = LockView(Locks())

        async def locked(_: Locks) -> list[Finding]:
            await view.refresh(conn)
            return [locked_finding(view.locks)]

        async def unused(locks: Locks) -> list[Finding]:
            return await unused_indexes(conn, None, locks)

        async def duplicate(locks: Locks) -> list[Finding]:
            return await duplicate_indexes(conn, None, locks)

        checks: list[tuple[str, LockAwareCheck]] = [
            ("locked relations", locked), *((name, _ignoring_locks(conn, check)) for name, check in plain),
            ("unused indexes", unused), ("duplicate indexes", duplicate),
            ("top queries", _ignoring_locks(conn, statements)),
        ]
        for name, check in checks:
            report.findings.extend(await run_isolated(conn, name, check, view))
        return report

    return await db.run(work, role=role, read_only=True, rollback=True)


def _ignoring_locks(conn: asyncpg.Connection, check: Check) -> LockAwareCheck:
    """A check that reads only catalogs and statistics views, which no relation lock blocks."""

    async def run(_: Locks) -> list[Finding]:
        return await check(conn)

    return run


async def _cache_hit(conn: asyncpg.Connection) -> list[Finding]:
    row = await conn.fetchrow("SELECT blks_hit::float8 AS hit, blks_read::float8 AS read FROM pg_stat_database "
                              "WHERE datname = current_database()")
    if row is None or row["hit"] + row["read"] < 1000:
        return [Finding(Severity.OK, "cache_hit", "cache hit ratio: too little traffic yet to judge")]
    ratio = row["hit"] / (row["hit"] + row["read"])
    reads = row["hit"] + row["read"]
    text = f"cache hit ratio {ratio:.1%} ({number(row['read'])} of {number(reads)} page reads missed)"
    if ratio >= 0.99:
        return [Finding(Severity.OK, "cache_hit", f"cache hit ratio {ratio:.1%}")]
    return [Finding(
        Severity.CRITICAL if ratio < 0.9 else Severity.WARNING, "cache_hit", f"Low {text}",
        why="Pages not found in shared_buffers are read from the OS cache or disk, which is far slower.",
        action=("If the working set should fit in memory, raise shared_buffers (about 25% of RAM is usual); "
                "look for sequential scans of large tables (explain the top queries)."),
    )]


async def _connections(conn: asyncpg.Connection) -> list[Finding]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM pg_stat_activity "  # other users' backend_type is hidden from plain roles
        "        WHERE backend_type = 'client backend' OR backend_type IS NULL) AS used, "
        "current_setting('max_connections')::int AS max, "
        "current_setting('superuser_reserved_connections')::int AS reserved")
    assert row is not None
    usable = max(row["max"] - row["reserved"], 1)
    share = row["used"] / usable
    text = f"{row['used']} of {usable} connections in use ({share:.0%}; max_connections {row['max']})"
    if share < 0.75:
        return [Finding(Severity.OK, "connections", text)]
    return [Finding(
        Severity.CRITICAL if share >= 0.9 else Severity.WARNING, "connections", text.capitalize(),
        why="When every slot is taken, new connections are refused and applications fail.",
        action=("Put a pooler (PgBouncer) in front, lower application pool sizes, and close idle sessions; "
                "raising max_connections costs memory per connection."),
    )]


async def _blocking(conn: asyncpg.Connection) -> list[Finding]:
    waiting = await conn.fetch(
        "SELECT pid, usename, left(query, 160) AS query, extract(epoch FROM now() - query_start)::float8 AS secs, "
        "pg_blocking_pids(pid) AS blockers FROM pg_stat_activity "
        "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0 ORDER BY query_start")
    if not waiting:
        return [Finding(Severity.OK, "blocking", "no blocked sessions")]
    blockers = sorted({pid for row in waiting for pid in row["blockers"]})
    info = {r["pid"]: r for r in await conn.fetch(
        "SELECT pid, usename, state, left(query, 160) AS query, "
        "extract(epoch FROM now() - coalesce(xact_start, query_start))::float8 AS secs "
        "FROM pg_stat_activity WHERE pid = ANY($1::int[])", blockers)}
    findings: list[Finding] = []
    for pid in blockers:
        victims = [w for w in waiting if pid in w["blockers"]]
        holder = info.get(pid)
        who = (f"Session {pid} ({holder['usename']}, {holder['state']}, transaction open "
               f"{duration_s(holder['secs'] or 0.0)}; last query: {_query(holder['query'])})"
               if holder is not None else f"Session {pid} (details not visible)")
        findings.append(Finding(
            Severity.CRITICAL, "blocking",
            f"{who} blocks {len(victims)} session{'s' if len(victims) != 1 else ''}",
            details=tuple(f"pid {w['pid']} ({w['usename']}) waiting {duration_s(w['secs'] or 0.0)}: "
                          f"{_query(w['query'])}" for w in victims),
            why="Blocked sessions wait on its locks; waits pile up until connections or timeouts run out.",
            action=(f"Ask the owner of session {pid} to commit or roll back. If it is abandoned, a DBA can end it "
                    f"with SELECT pg_terminate_backend({pid}) (pgbot does not do that itself)."),
        ))
    return findings


async def _long_running(conn: asyncpg.Connection, threshold_s: float) -> list[Finding]:
    rows = await conn.fetch(
        "SELECT pid, usename, state, left(query, 160) AS query, "
        "extract(epoch FROM now() - CASE WHEN state LIKE 'idle in transaction%' THEN xact_start "
        "                                ELSE query_start END)::float8 AS secs "
        "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle' "
        "AND now() - CASE WHEN state LIKE 'idle in transaction%' THEN xact_start ELSE query_start END "
        "    > make_interval(secs => $1) ORDER BY secs DESC LIMIT 20", threshold_s)
    if not rows:
        return [Finding(Severity.OK, "long_running", f"no query running longer than {duration_s(threshold_s)}")]
    hidden = any(r["query"] == "<insufficient privilege>" for r in rows)
    idle = [r for r in rows if (r["state"] or "").startswith("idle in transaction")]
    return [Finding(
        Severity.WARNING, "long_running",
        f"{len(rows)} session{'s' if len(rows) != 1 else ''} busy for more than {duration_s(threshold_s)}"
        + (f" ({len(idle)} idle in an open transaction)" if idle else ""),
        details=tuple(f"pid {r['pid']} ({r['usename']}, {r['state']}, {duration_s(r['secs'] or 0.0)}): "
                      f"{_query(r['query'])}" for r in rows) + ((PRIVILEGE_HINT,) if hidden else ()),
        why=("Long queries hold locks and snapshots: VACUUM cannot clean rows they might still see, and "
             "idle transactions keep locks for nothing."),
        action=("Explain the long queries to see why they are slow; set idle_in_transaction_session_timeout so "
                "forgotten transactions end; cancel with pg_cancel_backend(pid) if needed."),
    )]


async def _vacuum(conn: asyncpg.Connection) -> list[Finding]:
    rows = await conn.fetch(
        "SELECT schemaname || '.' || relname AS tbl, n_live_tup::float8 AS live, n_dead_tup::float8 AS dead, "
        "n_mod_since_analyze::float8 AS modified, greatest(last_vacuum, last_autovacuum) AS vacuumed, "
        "greatest(last_analyze, last_autoanalyze) AS analyzed FROM pg_stat_user_tables "
        "ORDER BY n_dead_tup DESC")
    findings: list[Finding] = []
    dead = [r for r in rows if r["dead"] >= 1000 and r["dead"] > 0.2 * max(r["live"], 1.0)]
    if dead:
        findings.append(Finding(
            Severity.WARNING, "dead_rows", f"{len(dead)} table{'s' if len(dead) != 1 else ''} with many dead rows",
            details=tuple(f"{r['tbl']}: {number(r['dead'])} dead vs {number(r['live'])} live rows; last vacuum "
                          f"{_when(r['vacuumed'])}" for r in dead[:20]),
            why="Dead rows still take space and are read by scans until VACUUM reclaims them.",
            action=("Run VACUUM (ANALYZE) on them; if it keeps happening, make autovacuum more aggressive for the "
                    "table (autovacuum_vacuum_scale_factor) and look for long transactions holding cleanup back."),
        ))
    else:
        findings.append(Finding(Severity.OK, "dead_rows", "no table with many dead rows"))
    stale = [r for r in rows if r["live"] >= 1000
             and (r["analyzed"] is None or r["modified"] > 0.2 * r["live"])]
    if stale:
        findings.append(Finding(
            Severity.WARNING, "stale_statistics",
            f"{len(stale)} table{'s' if len(stale) != 1 else ''} with outdated planner statistics",
            details=tuple(f"{r['tbl']}: {number(r['modified'])} rows changed since the last ANALYZE "
                          f"({_when(r['analyzed'])})" for r in stale[:20]),
            why="The planner picks plans from these statistics; stale ones cause misestimates and slow plans.",
            action="Run ANALYZE on them; check that autovacuum is on and keeping up.",
        ))
    else:
        findings.append(Finding(Severity.OK, "stale_statistics", "planner statistics up to date"))
    return findings


async def _table_bloat(conn: asyncpg.Connection) -> list[Finding]:
    """Expected pages from row count × average row width (pg_stats) against actual pages: an estimate."""
    rows = await conn.fetch(
        "SELECT n.nspname || '.' || c.relname AS tbl, c.relpages::float8 AS pages, c.reltuples::float8 AS tuples, "
        "current_setting('block_size')::int AS bs, "
        "coalesce(substring(array_to_string(c.reloptions, ',') FROM 'fillfactor=([0-9]+)')::int, 100) AS ff, "
        "(SELECT sum(s.avg_width) FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname)"
        "::float8 AS width FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND c.relpages > 128 AND c.reltuples > 0 "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'")
    bloated: list[tuple[str, float, float]] = []
    for r in rows:
        if r["width"] is None:
            continue  # no statistics (never analyzed, or columns the role cannot read)
        tuple_bytes = 24 + math.ceil(r["width"] / 8) * 8 + 4  # header, aligned data, line pointer
        per_page = max(1, math.floor((r["bs"] - 24) * r["ff"] / 100 / tuple_bytes))
        expected = math.ceil(r["tuples"] / per_page)
        extra = r["pages"] - expected
        if extra * r["bs"] >= 10 * 1024 * 1024 and extra / r["pages"] >= 0.3:
            bloated.append((r["tbl"], extra * r["bs"], extra / r["pages"]))
    if not bloated:
        return [Finding(Severity.OK, "table_bloat", "no significant table bloat (estimate)")]
    return [Finding(
        Severity.WARNING, "table_bloat", f"{len(bloated)} table{'s' if len(bloated) != 1 else ''} look bloated "
        "(an estimate from row counts and widths)",
        details=tuple(f"{t}: ~{size(b)} ({share:.0%}) more than its rows need" for t, b, share in bloated[:20]),
        why="Empty space inside tables is still read by sequential scans and held in cache.",
        action=("VACUUM makes the space reusable; to give it back, pg_repack (online) or VACUUM FULL (locks the "
                "table against all access while it runs). pgstattuple gives exact figures."),
    )]


async def _index_bloat(conn: asyncpg.Connection) -> list[Finding]:
    """B-tree size against what its entries need at the default 90% fill: an estimate."""
    rows = await conn.fetch(
        "SELECT n.nspname || '.' || ic.relname AS idx, ic.relpages::float8 AS pages, ic.reltuples::float8 AS tuples, "
        "current_setting('block_size')::int AS bs, "
        "(SELECT sum(s.avg_width) FROM pg_attribute a JOIN pg_stats s ON s.schemaname = n.nspname "
        " AND s.tablename = tc.relname AND s.attname = a.attname "
        " WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[]))::float8 AS width "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = ic.relnamespace JOIN pg_am am ON am.oid = ic.relam "
        "WHERE am.amname = 'btree' AND ic.relpages > 128 AND ic.reltuples > 0 AND i.indexprs IS NULL "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'")
    bloated: list[tuple[str, float, float]] = []
    for r in rows:
        if r["width"] is None:
            continue
        entry = 8 + math.ceil(r["width"] / 8) * 8 + 4
        per_page = max(1, math.floor((r["bs"] - 24 - 16) * 0.9 / entry))
        expected = math.ceil(r["tuples"] / per_page) + 1
        extra = r["pages"] - expected
        if extra * r["bs"] >= 10 * 1024 * 1024 and extra / r["pages"] >= 0.4:
            bloated.append((r["idx"], extra * r["bs"], extra / r["pages"]))
    if not bloated:
        return [Finding(Severity.OK, "index_bloat", "no significant index bloat (estimate)")]
    return [Finding(
        Severity.WARNING, "index_bloat", f"{len(bloated)} index{'es' if len(bloated) != 1 else ''} look bloated "
        "(an estimate)",
        details=tuple(f"{i}: ~{size(b)} ({share:.0%}) more than its entries need" for i, b, share in bloated[:20]),
        why="A bloated index is slower to scan and takes cache space from data.",
        action="REINDEX INDEX CONCURRENTLY rebuilds it without blocking reads or writes.",
    )]


async def _top_statements(conn: asyncpg.Connection, limit: int) -> list[Finding]:
    schema = await conn.fetchval(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_stat_statements'")
    # pg_settings hides shared_preload_libraries from roles without pg_read_all_settings: None = unknown.
    libraries = await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
    preloaded = None if libraries is None else "pg_stat_statements" in libraries
    if schema is None:
        steps = ("run CREATE EXTENSION pg_stat_statements; in this database" if preloaded else
                 "add pg_stat_statements to shared_preload_libraries in postgresql.conf, restart the server, then "
                 "run CREATE EXTENSION pg_stat_statements; in this database")
        return [Finding(
            Severity.INFO, "pg_stat_statements_missing",
            "pg_stat_statements is not installed here, so there are no top queries by total time",
            why="It records every statement's calls and time: the quickest way to find what loads the server.",
            action=f"To enable it: {steps}.",
        )]
    not_loaded = Finding(
        Severity.INFO, "pg_stat_statements_missing",
        "pg_stat_statements is installed but not loaded, so it records nothing",
        action="Add pg_stat_statements to shared_preload_libraries in postgresql.conf and restart the server.",
    )
    if preloaded is False:
        return [not_loaded]
    try:
        async with conn.transaction():
            rows = await _statements(conn, schema, limit)
    except asyncpg.ObjectNotInPrerequisiteStateError:
        return [not_loaded]
    if not rows:
        return [Finding(Severity.OK, "top_queries", "pg_stat_statements has recorded no statements yet")]
    hidden = any(r["query"] == "<insufficient privilege>" for r in rows)
    return [Finding(
        Severity.INFO, "top_queries", f"Top {len(rows)} queries by total execution time (pg_stat_statements)",
        details=tuple(f"{number(r['total_ms'])} ms total, {number(r['calls'])} calls, {number(r['mean_ms'])} ms "
                      f"each: {r['query']}" for r in rows) + ((PRIVILEGE_HINT,) if hidden else ()),
        why="A query run often can cost more in total than a slow one run once.",
        action="Explain the top ones and ask for index advice on them.",
    )]


async def _statements(conn: asyncpg.Connection, schema: str, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 200) AS query, calls, "
        f"total_exec_time AS total_ms, mean_exec_time AS mean_ms, rows "
        f"FROM {schema}.pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "ORDER BY total_exec_time DESC LIMIT $1", limit)
    return rows


def _query(text: str | None) -> str:
    return " ".join((text or "").split()) or "(none)"


def _when(stamp: object) -> str:
    return f"{stamp:%Y-%m-%d %H:%M}" if stamp is not None else "never"

"""The health check and index advice with pg_stat_statements present (a private server preloading it)."""

from __future__ import annotations

import asyncpg

from core.diagnostics.health import health_check
from core.diagnostics.indexes import advise, top_statements
from core.errors import GuardError
from core.sqlguard import SqlGuard
from tests.integration.diagnostics_env import database
from tests.private_servers import private_postgres
from tests.services import dsn_for_database


async def test_top_queries_come_from_pg_stat_statements() -> None:
    with private_postgres("shared_preload_libraries=pg_stat_statements") as server:
        admin_dsn = server.dsn
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute("CREATE DATABASE shop")
        await admin.close()
        dsn = dsn_for_database(admin_dsn, "shop")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE EXTENSION pg_stat_statements; CREATE TABLE t (id int, v int);"
                               "INSERT INTO t SELECT g, g % 2000 FROM generate_series(1, 20000) g; ANALYZE t")
            for _ in range(20):
                await conn.fetch("SELECT count(*) FROM t WHERE v = 7")
        finally:
            await conn.close()
        db = database(dsn)
        try:
            report = await health_check(db, role=None)
            queries = await top_statements(db, role=None)
            advice = await advise(db, SqlGuard(), next(q for q in queries if "FROM t WHERE v" in q), role=None)
        finally:
            await db.aclose()
    top = next(f for f in report.findings if f.check == "top_queries")
    assert top.what.startswith("Top ") and "by total execution time" in top.what
    assert any("20 calls" in d and "FROM t WHERE v = $1" in d for d in top.details), top.details
    assert "pg_stat_statements_missing" not in report.checks()
    assert any("FROM t WHERE v = $1" in q for q in queries)
    # The recorded query has a placeholder: its generic plan is advised on.
    assert advice.recommended and advice.recommended[0].candidate.columns == ("v",), advice.render()


async def test_overlong_and_overdeep_recorded_queries_are_skipped_never_parsed() -> None:
    """Issue 13: query texts from pg_stat_statements went to the parser whatever their size (a deep one
    segfaults it). Now each is cut in SQL and refused by the guard's size checks, and advice skips it."""
    with private_postgres("shared_preload_libraries=pg_stat_statements") as server:
        admin = await asyncpg.connect(server.dsn)
        await admin.execute("CREATE DATABASE shop")
        await admin.close()
        dsn = dsn_for_database(server.dsn, "shop")
        conn = await asyncpg.connect(dsn)
        long_sql = "SELECT count(*) FROM t WHERE v IN (" + ", ".join(str(i) for i in range(6000)) + ")"
        # Flat for the server, but past the guard's depth estimate (an upper bound: every operator counts).
        deep_sql = "SELECT ARRAY[" + ",".join(["~v"] * 5200) + "] FROM t"
        try:
            await conn.execute("CREATE EXTENSION pg_stat_statements; CREATE TABLE t (id int, v int);"
                               "INSERT INTO t SELECT g, g FROM generate_series(1, 100) g")
            for _ in range(3):
                await conn.fetch(long_sql)
                await conn.fetch(deep_sql)
        finally:
            await conn.close()
        db = database(dsn)
        guard = SqlGuard()
        try:
            queries = await top_statements(db, role=None, limit=10, max_chars=guard.max_sql_chars)
            refusals = []
            for query in queries:
                assert len(query) <= guard.max_sql_chars + 1
                try:
                    await advise(db, guard, query, role=None)
                except GuardError as exc:
                    refusals.append(exc.user_message)
        finally:
            await db.aclose()
    assert any("characters long; pgbot accepts at most 20,000" in r for r in refusals), refusals
    assert any("nested too deeply" in r for r in refusals), refusals

"""``pgbot health``, ``pgbot explain`` and ``pgbot index-advice`` as real subprocesses on a seeded database."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.integration.diagnostics_env import SLOW_QUERY, big_db_fixture  # noqa: F401 - fixture
from tests.integration.test_cli import assert_clean, config, run_pgbot


async def run_without_terminal(*args: str, home: Path) -> tuple[int, str, str]:
    """Like run_pgbot, with stdin from /dev/null: a developer's terminal must not answer the prompt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_"))}
    env["HOME"] = str(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=str(home))
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_diagnostics_commands(tmp_path: Path, big_db: str) -> None:
    path = str(config(tmp_path, f'[databases.shop]\ndsn = "{big_db}"\n[databases.other]\n'
                                f'dsn = "{big_db}"\ndefault = true\n'))

    code, out, err = await run_pgbot("health", "--db", "shop", "--config", path, home=tmp_path)
    assert code == 0, err
    assert_clean(out + err)
    assert out.startswith("Health of 'shop' (PostgreSQL") and "orders_big_status_never_used" in out
    assert "shared_preload_libraries" in out and "Why it matters" in out

    code, out, err = await run_pgbot("explain", "DELETE FROM orders_big", "--analyze", "--config", path,
                                     home=tmp_path)
    assert code == 0, err
    assert out.startswith("EXPLAIN on 'other':") and "pgbot refuses it" in out and "nothing ran" in out

    code, out, err = await run_pgbot("index-advice", SLOW_QUERY, "--db", "shop", "--config", path, home=tmp_path)
    assert code == 0, err
    assert "Recommended" in out and '"public"."orders_big" ("customer_id")' in out and "estimates" in out

    code, out, err = await run_pgbot("index-advice", "--db", "shop", "--config", path, home=tmp_path)
    assert code == 1 and "pg_stat_statements is not installed" in err and "shared_preload_libraries" in err

    code, out, err = await run_pgbot("explain", "SELECT * FROM no_such_table", "--config", path, home=tmp_path)
    assert code == 1 and 'relation "no_such_table" does not exist' in err and "Traceback" not in err


async def test_health_and_index_advice_while_a_table_is_locked(tmp_path: Path, big_db: str) -> None:
    """The incident case: another session holds ACCESS EXCLUSIVE on orders_big. With a lock_timeout longer than
    pgbot's start-up, one wait on the lock would show in the time taken."""
    import time

    from tests.integration.diagnostics_env import access_exclusive

    path = str(config(tmp_path, f'[databases.shop]\ndsn = "{big_db}"\nlock_timeout_ms = 15000\n'))
    async with access_exclusive(big_db, "orders_big") as pid:
        started = time.monotonic()
        code, out, err = await run_pgbot("health", "--config", path, home=tmp_path)
        code_advice, advice, err_advice = await run_pgbot("index-advice", SLOW_QUERY, "--config", path, home=tmp_path)
        elapsed = time.monotonic() - started
    assert code == 0 and code_advice == 0, err + err_advice
    assert_clean(out + err + advice + err_advice)
    assert elapsed < 15, elapsed
    assert f"public.orders_big is locked by pid {pid} (ACCESS EXCLUSIVE" in out and "sizes are estimates" in out
    assert "orders_big_status_never_used" in out and "orders_big_created_a, public.orders_big_created_b" in out
    assert "check could not run" not in out and "check failed" not in out
    assert "cannot be planned right now" in advice and f"locked by pid {pid}" in advice
    assert "Candidates to measure then: (customer_id) on public.orders_big" in advice


async def test_index_advice_create_asks_then_builds_and_audits(tmp_path: Path, fresh_db: str) -> None:
    import asyncpg

    from tests.integration.diagnostics_env import seed

    await seed(fresh_db)
    path = str(config(tmp_path, f'[databases.shop]\ndsn = "{fresh_db}"\n'))
    code, out, err = await run_without_terminal("index-advice", SLOW_QUERY, "--create", "--config", path,
                                                home=tmp_path)
    assert code == 1 and "confirmation needs a terminal; pass --yes" in err
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.orders_big_customer_id_idx')") is None
        code, out, err = await run_pgbot("index-advice", SLOW_QUERY, "--create", "--yes", "--config", path,
                                         home=tmp_path)
        assert code == 0, err
        assert_clean(out + err)
        assert 'CREATE INDEX CONCURRENTLY "orders_big_customer_id_idx" ON "public"."orders_big" ("customer_id")' in out
        assert "index public.orders_big_customer_id_idx built" in out
        assert await conn.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                   "'public.orders_big_customer_id_idx'::regclass") is True
        events = [r["event"] for r in await conn.fetch(
            "SELECT event FROM pgbot.audit WHERE sql LIKE 'CREATE INDEX CONCURRENTLY%' ORDER BY id")]
        assert events == ["requested", "approved", "executed"]
        assert (await conn.fetchval("SELECT decided_by FROM pgbot.audit WHERE event = 'approved'")).startswith("cli:")
    finally:
        await conn.close()

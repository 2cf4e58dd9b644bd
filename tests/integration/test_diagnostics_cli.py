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

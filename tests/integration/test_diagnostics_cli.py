"""``pgbot health``, ``pgbot explain`` and ``pgbot index-advice`` as real subprocesses on a seeded database."""

from __future__ import annotations

from pathlib import Path

from tests.integration.diagnostics_env import SLOW_QUERY, big_db_fixture  # noqa: F401 - fixture
from tests.integration.test_cli import assert_clean, config, run_pgbot


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

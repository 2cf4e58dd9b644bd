"""The ``pgbot`` command as a real subprocess: one-line errors, exit codes, JSON output, no secrets."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests import llm_server as llm
from tests.helpers import load_shop

SECRET_KEY = "sk-test-SECRET-cli-999"
SECRET_PASSWORD = "s3cretPassw0rd"


async def run_pgbot(*args: str, home: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_"))}
    env["HOME"] = str(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=str(home),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pgbot.toml"
    path.write_text(body, encoding="utf-8")
    return path


def assert_clean(text: str) -> None:
    assert "Traceback" not in text
    assert SECRET_KEY not in text and SECRET_PASSWORD not in text


async def test_help_lists_every_command(tmp_path: Path) -> None:
    code, out, err = await run_pgbot("--help", home=tmp_path)
    assert code == 0, err
    for command in ("chat", "ask", "check-config", "demo", "slack", "discord", "audit"):
        assert command in out


async def test_check_config_reports_bad_keys_one_line_each(tmp_path: Path) -> None:
    path = config(tmp_path, f'[llm]\napi_key = "{SECRET_KEY}"\ntimeout_s = "never"\n[databases.a]\nmax_rows = 1\n')
    code, out, err = await run_pgbot("check-config", "--config", str(path), home=tmp_path)
    assert code == 2
    assert_clean(out + err)
    lines = err.strip().splitlines()
    assert f"FAIL {path}: llm.timeout_s: Input should be a valid number" in lines[0] or any(
        "llm.timeout_s" in line for line in lines)
    assert any("databases.a.dsn: required key is missing" in line for line in lines)


async def test_check_config_names_an_unknown_disabled_tool(tmp_path: Path) -> None:
    path = config(tmp_path, '[llm]\ndisabled_tools = ["propose_restor"]\n[databases.a]\ndsn = "postgresql://x@/a"\n')
    code, _, err = await run_pgbot("check-config", "--config", str(path), home=tmp_path)
    assert code == 2
    assert f"FAIL {path}: llm.disabled_tools: unknown tool(s) propose_restor;" in err and "propose_restore" in err


async def test_check_config_tries_databases_and_llm(tmp_path: Path, pg_admin_dsn: str, llm_server) -> None:
    path = config(tmp_path, f"""
[llm]
base_url = "{llm_server.base_url}/"
api_key = "{SECRET_KEY}"
[databases.good]
dsn = "{pg_admin_dsn}"
default = true
[databases.down]
dsn = "postgresql://pgbot:{SECRET_PASSWORD}@127.0.0.1:1/nope"
connect_timeout_s = 2
""")
    code, out, err = await run_pgbot("check-config", "--config", str(path), home=tmp_path)
    assert code == 1
    assert_clean(out + err)
    assert "ok   databases.good: PostgreSQL" in out
    assert f"FAIL {path}: databases.down.dsn: Database 'down' cannot be reached" in err
    assert "ok   llm: gpt-4o-mini" in out

    dead_llm = config(tmp_path, f'[llm]\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "{SECRET_KEY}"\n'
                                f'timeout_s = 2\nmax_retries = 0\n[databases.good]\ndsn = "{pg_admin_dsn}"\n')
    code, out, err = await run_pgbot("check-config", "--config", str(dead_llm), home=tmp_path)
    assert code == 1
    assert_clean(out + err)
    assert f"FAIL {dead_llm}: llm:" in err



async def test_check_config_tries_redis_over_the_bots_own_pool(tmp_path: Path, pg_admin_dsn: str,
                                                               redis_url: str) -> None:
    path = config(tmp_path, f'[redis]\nurl = "{redis_url}"\n[databases.good]\ndsn = "{pg_admin_dsn}"\n')
    code, out, err = await run_pgbot("check-config", "--config", str(path), home=tmp_path)
    assert code == 0, err
    assert "ok   redis: reachable" in out

    down = config(tmp_path, f'[redis]\nurl = "redis://:{SECRET_PASSWORD}@127.0.0.1:1/0"\n'
                            f'[databases.good]\ndsn = "{pg_admin_dsn}"\n')
    code, out, err = await run_pgbot("check-config", "--config", str(down), home=tmp_path)
    assert code == 1
    assert_clean(out + err)
    assert f"FAIL {down}: redis.url: cannot connect (ConnectionError)" in err

async def test_ask_json_answers_with_sql_and_rows(tmp_path: Path, fresh_db: str, llm_server) -> None:
    await load_shop(fresh_db)
    llm_server.script(
        llm.tool_call("run_query", {"sql": "SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"}),
        llm.text("60 pending, 30 shipped."),
    )
    path = config(tmp_path, f'[llm]\nbase_url = "{llm_server.base_url}"\napi_key = "{SECRET_KEY}"\n'
                            f'[databases.shop]\ndsn = "{fresh_db}"\n')
    code, out, err = await run_pgbot("ask", "orders by status?", "--format", "json", "--config", str(path),
                                     home=tmp_path)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["answer"] == "60 pending, 30 shipped."
    assert payload["sql"] == ["SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"]
    assert payload["columns"] == ["status", "n"]
    assert payload["rows"] == [["pending", 60], ["shipped", 30]]
    assert payload["truncated"] is False and payload["pending"] is None


async def test_ask_failures_exit_non_zero_with_one_clear_line(tmp_path: Path, fresh_db: str, llm_server) -> None:
    llm_server.script(llm.error(401, f"Incorrect API key provided: {SECRET_KEY}"))
    path = config(tmp_path, f'[llm]\nbase_url = "{llm_server.base_url}"\napi_key = "{SECRET_KEY}"\nmax_retries = 0\n'
                            f'[databases.shop]\ndsn = "{fresh_db}"\n')
    code, out, err = await run_pgbot("ask", "anything", "--config", str(path), home=tmp_path)
    assert code == 1
    assert_clean(out + err)
    assert "rejected the API key" in out + err

    code, out, err = await run_pgbot("ask", "anything", "--db", "nope", "--config", str(path), home=tmp_path)
    assert code == 1
    assert err.strip() == "pgbot: There is no database named 'nope'. Configured: shop."

    code, out, err = await run_pgbot("ask", "/sql SELECT 1 AS one, NULL AS nothing", "--format", "csv",
                                     "--config", str(path), home=tmp_path)
    assert code == 0, err
    assert out.splitlines() == ["one,nothing", "1,"]


async def run_pgbot_with_input(*args: str, home: Path, stdin: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_"))}
    env.update(HOME=str(home), COLUMNS="120")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=str(home),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_demo_with_no_config_starts_an_embedded_postgres(tmp_path: Path) -> None:
    """README's main command on a machine with nothing configured: embedded Postgres plus the sample shop."""
    code, out, err = await run_pgbot_with_input(
        "demo", "--data-dir", str(tmp_path / "pg"), home=tmp_path,
        stdin="/sql SELECT count(*) AS customers FROM customers\nhow many orders?\n/quit\n",
    )
    assert code == 0, err
    assert "database: demo" in out
    assert "customers" in out and "200" in out
    assert "No language model is configured" in out
    assert "Traceback" not in out + err


async def test_demo_load_sample_fills_the_configured_database(tmp_path: Path, fresh_db: str) -> None:
    path = config(tmp_path, f'[databases.shop]\ndsn = "{fresh_db}"\n')
    code, out, err = await run_pgbot_with_input(
        "demo", "--load-sample", "--config", str(path), home=tmp_path,
        stdin="/sql SELECT count(*) AS products FROM products\n/quit\n",
    )
    assert code == 0, err
    assert "products" in out and "50" in out

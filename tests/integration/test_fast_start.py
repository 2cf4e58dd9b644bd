"""Fast start: ``pgbot --help`` imports neither a chat SDK nor the database or LLM clients, and ``pgbot ask``
imports no chat SDK. Checked in fresh interpreters, where ``sys.modules`` tells the truth."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAT_SDKS = ("slack_bolt", "slack_sdk", "discord", "aiohttp")
HEAVY = ("openai", "asyncpg", "redis", "pglast", "rich", "pydantic")

HELP_SCRIPT = """
import json, sys
import bot.cli
try:
    bot.cli.build_parser().parse_args(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""

ASK_SCRIPT = """
import json, sys
from bot.cli import main
code = main(["ask", "/sql SELECT 41 + 1 AS answer", "--format", "json", "--config", sys.argv[1]])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


async def _python(script: str, *args: str, home: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_"))}
    env["HOME"] = str(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=str(ROOT),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _top(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


async def test_help_imports_no_sdk_and_no_client_library(tmp_path: Path) -> None:
    code, out, err = await _python(HELP_SCRIPT, home=tmp_path)
    assert code == 0, err
    usage, _, modules_json = out.rpartition("\n[")
    loaded = _top(json.loads("[" + modules_json))
    assert "usage: pgbot" in usage
    assert not loaded & set(CHAT_SDKS), loaded & set(CHAT_SDKS)
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


async def test_ask_imports_no_chat_sdk(fresh_db: str, tmp_path: Path) -> None:
    config = tmp_path / "pgbot.toml"
    config.write_text(f'[databases.shop]\ndsn = "{fresh_db}"\n', encoding="utf-8")
    code, out, err = await _python(ASK_SCRIPT, str(config), home=tmp_path)
    assert code == 0, err
    answer, _, result_json = out.rstrip().rpartition("\n")
    result = json.loads(result_json)
    assert result["code"] == 0 and json.loads(answer)["rows"] == [[42]]
    loaded = _top(result["modules"])
    assert not loaded & set(CHAT_SDKS), loaded & set(CHAT_SDKS)

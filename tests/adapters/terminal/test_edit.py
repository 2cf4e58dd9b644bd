"""``/edit`` in the terminal: ``$EDITOR`` (a small script that rewrites the file) on an interactive chat, and
the inline prompt when the chat reads a pipe; the real Agent on real Postgres and Redis, the scripted model."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from rich.console import Console

from adapters.terminal.chat import TerminalChat
from adapters.terminal.editor import edit_last_answer
from bot.wiring import build_agent
from core import Agent
from tests import llm_server as llm
from tests.helpers import settings_for
from tests.llm_server import ScriptedLlmServer

QUERY = "SELECT id FROM t WHERE id <= 3 ORDER BY id"
EDITOR = """#!{python}
import os, sys
path = sys.argv[-1]
with open(os.environ["EDIT_TEST_SEEN"], "w") as seen:
    seen.write(open(path).read())
if os.environ.get("EDIT_TEST_FAIL"):
    sys.exit(3)
with open(path, "w") as edited:
    edited.write(os.environ["EDIT_TEST_SQL"])
"""


async def table_t(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g")
    finally:
        await conn.close()


@pytest.fixture
async def agent(fresh_db: str, llm_server: ScriptedLlmServer, redis_url: str) -> AsyncIterator[Agent]:
    await table_t(fresh_db)
    built = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url))
    yield built
    await built.aclose()


async def test_edit_opens_the_editor_and_runs_what_it_wrote(
    agent: Agent, llm_server: ScriptedLlmServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_db: str
) -> None:
    script = tmp_path / "fake-editor"
    script.write_text(EDITOR.format(python=sys.executable), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    seen = tmp_path / "seen.sql"
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{script} --wait")  # split like a shell: the file name comes last
    monkeypatch.setenv("EDIT_TEST_SEEN", str(seen))
    monkeypatch.setenv("EDIT_TEST_SQL", "SELECT id FROM t WHERE id BETWEEN 41 AND 43 ORDER BY id\n")
    out = io.StringIO()
    chat = TerminalChat(agent, console=Console(file=out, width=120), interactive=True)

    llm_server.script(llm.tool_call("run_query", {"sql": QUERY}), llm.text("Here are the ids."))
    await chat.send("list the first ids")
    await edit_last_answer(chat)
    assert seen.read_text(encoding="utf-8") == "SELECT id\nFROM t\nWHERE id <= 3\nORDER BY id\n"  # laid out
    text = out.getvalue()
    assert "Edited SQL of answer" in text and "run again: 3 rows" in text
    assert all(n in text for n in ("41", "42", "43"))

    # The next /edit starts from the edited answer; a change becomes the y/N approval, here refused.
    monkeypatch.setenv("EDIT_TEST_SQL", "DELETE FROM t WHERE id > 10")
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    await edit_last_answer(chat)
    assert "BETWEEN 41 AND 43" in seen.read_text(encoding="utf-8")
    assert "DELETE FROM t" in out.getvalue() and "was rejected" in out.getvalue()  # the card, then the "n"
    assert await _count(fresh_db) == 50

    # Several statements: refused by the guard, nothing runs.
    monkeypatch.setenv("EDIT_TEST_SQL", "SELECT 1; DELETE FROM t")
    await edit_last_answer(chat)
    assert "2 statements" in out.getvalue() and await _count(fresh_db) == 50

    # The editor fails: nothing is sent.
    monkeypatch.setenv("EDIT_TEST_FAIL", "1")
    requests = len(llm_server.requests)
    before = out.getvalue()
    await edit_last_answer(chat)
    assert out.getvalue()[len(before):].strip() == "The editor exited with status 3. Edit cancelled: nothing ran."
    assert len(llm_server.requests) == requests


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM t"))
    finally:
        await conn.close()


async def test_edit_without_a_terminal_reads_the_edit_at_the_prompt(
    tmp_path: Path, fresh_db: str, llm_server: ScriptedLlmServer
) -> None:
    """``pgbot chat`` on a pipe: no editor is started (EDITOR=false would cancel), the edit is typed inline."""
    await table_t(fresh_db)
    config = tmp_path / "pgbot.toml"
    config.write_text(f'[databases.shop]\ndsn = "{fresh_db}"\n[llm]\nbase_url = "{llm_server.base_url}"\n'
                      'api_key = "k"\nmodel = "m"\nmax_retries = 0\ntool_mode = "native"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_"))}
    env.update(HOME=str(tmp_path), COLUMNS="120", EDITOR="false")
    llm_server.script(llm.tool_call("run_query", {"sql": QUERY}), llm.text("Here are the ids."))
    script = "list the first ids\n/edit\nSELECT id * 1000 AS big\nFROM t WHERE id = 7\n\n/edit\n\n/quit\n"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "chat", "--config", str(config),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    raw, err = await asyncio.wait_for(proc.communicate(script.encode()), timeout=60)
    out = raw.decode()
    assert proc.returncode == 0, err.decode()
    assert "The SQL of the last answer:\nSELECT id\nFROM t\nWHERE id <= 3\nORDER BY id" in out
    assert "Edited SQL of answer" in out and "run again: 1 row." in out and "7,000" in out
    assert out.count("Edit cancelled: nothing ran.") == 1  # the second /edit, ended at once
    assert "Traceback" not in out + err.decode()

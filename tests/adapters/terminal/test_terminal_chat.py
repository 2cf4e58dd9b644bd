"""The terminal chat as a real subprocess fed through a pipe, and its CSV/JSON renderers."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

import pytest

from adapters.terminal.render import reply_as_csv, reply_as_json
from core import Reply, ReplyKind, ResultTable
from tests.helpers import load_shop


async def chat(tmp_path: Path, dsn: str, script: str, *extra: str) -> tuple[int, str, str]:
    config = tmp_path / "pgbot.toml"
    config.write_text(f'[databases.shop]\ndsn = "{dsn}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_"))}
    env.update(HOME=str(tmp_path), COLUMNS="120")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "chat", "--config", str(config), *extra,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(script.encode()), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_slash_commands_work_without_a_model(tmp_path: Path, fresh_db: str) -> None:
    await load_shop(fresh_db)
    script = "/tables\n/describe orders\n/sql SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1\n" \
             "/sql DROP TABLE orders\nn\n/sql SELECT count(*) AS still_there FROM orders\nhow many orders?\n/quit\n"
    code, out, err = await chat(tmp_path, fresh_db, script)
    assert code == 0, err
    assert "public.orders" in out and "One row per order" in out
    assert "FOREIGN KEY (customer_id) REFERENCES customers(id)" in out
    assert "pending" in out and "60" in out and "shipped" in out and "30" in out
    assert "Approve and run it? [y/N]" in out and "was rejected by terminal:" in out
    assert "still_there" in out and "90" in out
    assert "No language model is configured" in out and "OPENAI_API_KEY" in out
    assert "Traceback" not in out + err


def test_csv_and_json_renderers() -> None:
    table = ResultTable(columns=("a", "b"), rows=((1, None), ("x,y", "z")), truncated=True, row_cap=2)
    reply = Reply(kind=ReplyKind.ANSWER, text="done", sql=("SELECT 1",), table=table, database="shop")
    assert reply_as_csv(reply).splitlines() == ["a,b", "1,", '"x,y",z']
    payload = json.loads(reply_as_json(reply))
    assert payload == {
        "answer": "done", "kind": "answer", "database": "shop", "sql": ["SELECT 1"], "columns": ["a", "b"],
        "rows": [[1, None], ["x,y", "z"]], "truncated": True, "pending": None,
    }


async def test_progress_of_approved_work_is_printed_before_the_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from adapters.terminal.chat import TerminalChat
    from tests.adapters.slack.agent_double import ApprovalAgentDouble

    double = ApprovalAgentDouble(progress_lines=["Backing up 'shop'…", "Dumped 3 of 12 tables."])
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    chat_ui = TerminalChat(double, console=Console(file=out, width=120), interactive=False)  # type: ignore[arg-type]
    await chat_ui.send("back up shop")
    text = out.getvalue()
    assert text.index("Backing up 'shop'…") < text.index("Dumped 3 of 12 tables.") < text.index("Approved by")

"""Undo in the terminal: the outcome names ``/undo <id>``; ``/undo`` (the thread's newest change, or an id)
shows the undo's card and the operator confirms it at the prompt, through the real TerminalChat and Agent."""

from __future__ import annotations

import io
import sys

import asyncpg
import pytest
from rich.console import Console

from adapters.terminal.chat import TerminalChat
from bot.wiring import build_agent
from core import Settings
from tests.helpers import ITEMS_SQL


async def test_undo_at_the_prompt(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
        agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}), use_llm=False)
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.StringIO("y\ny\n"))
        try:
            chat = TerminalChat(agent, console=Console(file=out, width=200), interactive=False)
            await chat.send("/sql DELETE FROM items WHERE id <= 10")
            assert await conn.fetchval("SELECT count(*) FROM items") == 290
            change = await conn.fetchval("SELECT action_id FROM pgbot.undo")
            assert f"To undo it: /undo {change}" in out.getvalue()
            await chat.send("/undo")
            assert await conn.fetchval("SELECT count(*) FROM items") == 300
            await chat.send(f"/undo {change}")
            await chat.send("/sql CREATE INDEX items_qty ON items (qty)")
            await chat.send("/undo")  # the index is not the thread's newest undoable change: the DELETE is
        finally:
            await agent.aclose()
        ddl = await conn.fetchval("SELECT action_id FROM pgbot.audit WHERE sql LIKE 'CREATE INDEX%' LIMIT 1")
    finally:
        await conn.close()
    text = out.getvalue()
    assert "Change waiting for approval" in text and "put back 10 of 10 rows of public.items" in text
    assert text.count(f"Change {change} was already undone") == 2
    assert ddl is not None and "To undo it" not in text.split("CREATE INDEX")[-1]


async def test_undo_of_a_schema_change_says_why(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}), use_llm=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    try:
        chat = TerminalChat(agent, console=Console(file=out, width=200), interactive=False)
        await chat.send("/sql CREATE TABLE t (id int)")
        conn = await asyncpg.connect(fresh_db)
        try:
            change = await conn.fetchval("SELECT action_id FROM pgbot.audit WHERE event = 'executed'")
        finally:
            await conn.close()
        assert "To undo it" not in out.getvalue()
        await chat.send(f"/undo {change}")
    finally:
        await agent.aclose()
    assert "changed the schema; pgbot does not undo schema or admin changes" in out.getvalue()
    assert "pgbot migrate down" in out.getvalue()

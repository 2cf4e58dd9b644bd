"""The terminal keeps "whoever runs pgbot approves" (issue 13): with no roles table and no approvers, the
person at the prompt confirms their own change through the real TerminalChat and the real Agent on Postgres,
while the same database refuses every chat identity (tests/adapters/*/test_approval_safety.py)."""

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


async def test_the_operator_approves_their_own_change_at_the_prompt(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}), use_llm=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    try:
        chat = TerminalChat(agent, console=Console(file=out, width=160), interactive=False)
        await chat.send("/sql DELETE FROM items WHERE id <= 10")
    finally:
        await agent.aclose()
    text = out.getvalue()
    assert "Change waiting for approval" in text and "Nobody can approve" not in text
    assert "executed as the bot's login role" in text and "DELETE 10" in text
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM items") == 290
    finally:
        await conn.close()

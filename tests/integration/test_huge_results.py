"""Huge results: the cap is applied in the database fetch (server-side cursor, closed afterwards), and huge
text and bytea values are cut for chat and for the model."""

from __future__ import annotations

import time

import asyncpg

from bot.wiring import build_agent
from core import ReplyKind
from core.tools.format import table_for_model
from tests.helpers import final_reply, message, settings_for


async def test_huge_values_are_cut_for_chat_and_for_the_model(fresh_db: str) -> None:
    agent = build_agent(settings_for(fresh_db, max_cell_chars=300))
    try:
        reply = await final_reply(agent, message(
            "/sql SELECT repeat('x', 10000000) AS text_10mb, decode(repeat('ab', 5000000), 'hex') AS bytea_5mb, "
            "jsonb_build_object('k', repeat('y', 100000)) AS doc"
        ))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.RESULT and reply.table is not None
    text_cell, bytea_cell, json_cell = reply.table.rows[0]
    assert isinstance(text_cell, str) and text_cell.endswith("… (10000000 chars)") and len(text_cell) < 340
    assert isinstance(bytea_cell, str) and bytea_cell.startswith("\\xabab") and bytea_cell.endswith("(5000000 bytes)")
    assert len(bytea_cell) < 340
    assert isinstance(json_cell, str) and len(json_cell) < 340
    assert len(table_for_model(reply.table)) < 1000  # what the model sees is bounded too


async def test_cap_is_applied_in_the_fetch_and_the_cursor_is_closed(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 1000000) g")
        agent = build_agent(settings_for(fresh_db, max_rows=200))
        try:
            started = time.perf_counter()
            reply = await final_reply(agent, message("/sql SELECT * FROM big"))
            elapsed = time.perf_counter() - started
            states = await conn.fetch(
                "SELECT state FROM pg_stat_activity WHERE application_name = 'pgbot:shop' AND pid <> pg_backend_pid()"
            )
        finally:
            await agent.aclose()
    finally:
        await conn.close()
    assert reply.table is not None and reply.table.row_count == 200 and reply.table.truncated
    assert "cut at 200" in reply.text
    assert elapsed < 1.0, elapsed  # 200 rows fetched, not a million
    assert [r["state"] for r in states] == ["idle"] * len(states) and states  # transaction and cursor closed


def test_eight_50_mb_cells_keep_memory_bounded(fresh_db: str) -> None:
    """Issue 13: ``repeat('x', 50000000)`` × 8 took the bot from ~60 MB to ~1 GB; cells are now cut in the
    database, so the process's peak RSS barely moves (measured in a fresh process, see bench/wide_cells.py)."""
    from bench.wide_cells import measure

    result = measure("pgbot", fresh_db)
    print(f"peak RSS {result['peak_mb']:.1f} MB, idle {result['idle_mb']:.1f} MB, widest cell {result['widest']}")
    assert result["peak_mb"] - result["idle_mb"] < 50, result
    assert 0 < result["widest"] < 600, result  # the cells are shown, cut to max_cell_chars

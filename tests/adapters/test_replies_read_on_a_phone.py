"""Realistic results from a real Postgres (time zone Europe/Paris), rendered by the real Slack, Discord and
terminal renderers: what a person sees, not what the code does."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from rich.console import Console

from adapters.discord import render as discord_render
from adapters.slack import render as slack_render
from adapters.terminal.render import render_reply
from bot.wiring import build_agent
from core import Agent, Reply, ReplyKind, Settings
from tests.helpers import final_reply, message

SETUP = """
ALTER DATABASE {db} SET timezone TO 'Europe/Paris';
CREATE TABLE sales (country text, orders bigint, revenue numeric(12, 2), last_order timestamptz, note text);
INSERT INTO sales VALUES ('FR', 1234567, 98765432.10, '2024-05-03 14:07:09.123456+00', 'NULL'),
                         (NULL, 10, NULL, NULL, NULL);
"""
SALES = "/sql SELECT country, orders, revenue, last_order, note FROM sales ORDER BY orders DESC"
WIDE = "/sql SELECT g AS id, " + ", ".join(f"g * {i} AS c{i:02d}" for i in range(1, 16)) + \
    " FROM generate_series(1, 40) g"


@pytest.fixture
async def agent(fresh_db: str) -> AsyncIterator[Agent]:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(SETUP.format(db=f'"{await conn.fetchval("SELECT current_database()")}"'))
    finally:
        await conn.close()
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}), use_llm=False)
    yield agent
    await agent.aclose()


def slack_table(blocks: list[dict[str, Any]]) -> list[list[str]]:
    (table,) = [b for b in blocks if b["type"] == "table"]
    return [[c["text"] if c["type"] == "raw_text" else c["elements"][0]["elements"][0]["text"] for c in row]
            for row in table["rows"]]


def slack_texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            out.append(block["text"]["text"])
        out.extend(e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn")
        out.extend(f["text"] for f in block.get("fields", []))
    return out


def terminal(reply: Reply) -> str:
    console = Console(record=True, width=100, color_system=None)
    render_reply(console, reply)
    return console.export_text()


async def test_numbers_nulls_and_times_read_the_same_everywhere(agent: Agent) -> None:
    reply = await final_reply(agent, message(SALES))
    assert reply.kind is ReplyKind.RESULT, reply.text

    shown = slack_render.render(reply)
    assert slack_table(shown.blocks) == [
        ["country", "orders", "revenue", "last_order", "note"],
        ["FR", "1,234,567", "98,765,432.10", "2024-05-03 16:07:09", "NULL"],  # the text 'NULL' is text
        ["—", "10", "—", "—", "—"],  # a real NULL is a dash
    ]
    (table,) = [b for b in shown.blocks if b["type"] == "table"]
    assert table["column_settings"] == [None, {"align": "right"}, {"align": "right"}, None, None]
    context = slack_texts(shown.blocks)[-1]
    assert re.fullmatch(r"shop · 2 rows · \d+ ms · times in Europe/Paris", context)
    assert shown.file is None  # everything is shown: no CSV
    # The raw values stay in the result (JSON, CSV): exact decimal, UTC instant with microseconds, None.
    assert reply.table is not None and reply.table.rows[0][2] == "98765432.10"
    assert reply.table.rows[0][3] == "2024-05-03T14:07:09.123456+00:00" and reply.table.rows[1][0] is None

    # A monospace grid keeps to a phone's width (60 characters): "note" is left to the CSV, and said so.
    fallback = slack_render.render(reply, native_table=False)
    grid = slack_texts(fallback.blocks)[1].splitlines()
    assert grid[1:5] == [
        "country |    orders |       revenue | last_order",
        "--------+-----------+---------------+--------------------",
        "FR      | 1,234,567 | 98,765,432.10 | 2024-05-03 16:07:09",
        "—       |        10 |             — | —",
    ]
    assert slack_texts(fallback.blocks)[2] == "1 more column in the CSV" and fallback.file is not None

    discord = discord_render.render(reply)
    assert (discord.embeds[0].description or "").splitlines()[1:5] == grid[1:5]
    assert discord.embeds[0].footer.text == f"1 more column in result.csv\n{context}"

    text = terminal(reply)
    assert "│ FR      │ 1,234,567 │ 98,765,432.10 │ 2024-05-03 16:07:09 │ NULL │" in text
    assert "│ —       │        10 │             — │ —                   │ —    │" in text
    assert context in text
    assert "SELECT country\n     , orders" in text  # the terminal shows the SQL (dimmed), laid out


async def test_one_row_reads_as_key_value(agent: Agent) -> None:
    reply = await final_reply(agent, message(
        "/sql SELECT avg(x) AS avg_qty, count(*) AS orders, max(t) AS latest "
        "FROM (VALUES (1, '2024-05-03 22:30:00+00'::timestamptz), (2, NULL), (2, NULL)) v(x, t)"))
    fields = [f["text"] for b in slack_render.render(reply).blocks for f in b.get("fields", [])]
    assert fields == ["*avg_qty*\n1.67", "*orders*\n3", "*latest*\n2024-05-04 00:30:00"]
    embed = discord_render.render(reply).embeds[0]
    assert [(f.name, f.value) for f in embed.fields] == [("avg_qty", "1.67"), ("orders", "3"),
                                                          ("latest", "2024-05-04 00:30:00")]
    assert "times in Europe/Paris" in (embed.footer.text or "")
    text = terminal(reply)
    assert re.search(r"avg_qty\s+1\.67\s*\n", text) and re.search(r"latest\s+2024-05-04 00:30:00", text)


async def test_wide_and_long_results_keep_a_phone_screen_and_the_csv_keeps_everything(agent: Agent) -> None:
    reply = await final_reply(agent, message(WIDE))
    shown = slack_render.render(reply)
    rows = slack_table(shown.blocks)
    assert rows[0] == ["id", "c01", "c02", "c03", "c04", "c05"] and rows[1] == ["1", "1", "2", "3", "4", "5"]
    assert len(rows) == 16  # header + 15
    assert "showing 15 of 40 · 10 more columns in the CSV" in slack_texts(shown.blocks)
    assert shown.file is not None
    every = list(csv.reader(io.StringIO(shown.file.content.decode())))
    assert len(every) == 41 and len(every[0]) == 16 and every[40][15] == "600"

    discord = discord_render.render(reply)
    footer = discord.embeds[0].footer.text or ""
    assert footer.startswith("showing 15 of 40 · ")
    assert [f.filename for f in discord.files] == ["result.csv"]
    lines = (discord.embeds[0].description or "").splitlines()
    assert len(lines) == 15 + 4 and max(len(line) for line in lines) <= 60  # fits a phone's width

    text = terminal(reply)
    assert "showing 15 of 40" in text and "/export writes every row" in text
    assert "│ 40 │" not in text  # row 16 onwards is left to /export

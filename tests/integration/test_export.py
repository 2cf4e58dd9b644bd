"""CSV export: streamed by COPY into a file (rows never held in memory), guarded and limited like a read."""

from __future__ import annotations

import csv
import re
import stat
import tracemalloc
import uuid
from pathlib import Path

import asyncpg

from bot.wiring import build_agent
from core import ReplyKind
from core.config import Settings
from tests import llm_server as llm
from tests.helpers import final_reply, message, settings_for

DATA_SQL = """
CREATE TABLE items (id int PRIMARY KEY, label text, note text, blob bytea, at timestamptz);
INSERT INTO items
SELECT g, 'item, "quoted" ' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE E'line one\\nline two ünï' END,
       CASE WHEN g % 7 = 0 THEN decode('00ff10', 'hex') END, timestamptz '2026-01-01' + g * interval '1 minute'
FROM generate_series(1, 200000) g;
"""


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return stat.S_IMODE(info.st_mode), info.st_size


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _files(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def _resolved(path: Path) -> Path:
    return path.resolve()


async def _load(dsn: str, sql: str = DATA_SQL) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _settings(dsn: str, directory: Path, **db: object) -> Settings:
    settings = settings_for(dsn, **db)
    settings.limits.export_dir = directory
    return settings


async def test_export_streams_a_big_result_to_a_private_csv_file(fresh_db: str, tmp_path: Path) -> None:
    await _load(fresh_db)
    agent = build_agent(_settings(fresh_db, tmp_path / "exports"))
    try:
        reply = await final_reply(agent, message("/export SELECT * FROM items ORDER BY id -- all of them"))
        second = await final_reply(agent, message("/export SELECT id FROM items WHERE id <= 3"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.RESULT, reply.text
    path = reply.export.path
    assert path.parent == (tmp_path / "exports").resolve()
    assert re.fullmatch(r"shop-\d{8}-\d{6}-[0-9a-f]{12}\.csv", path.name)
    mode, size = _stat(path)
    assert mode == 0o600
    assert reply.export.rows == 200000 and reply.export.size_bytes == size
    # The path is for the adapter (it uploads the file in chat); people never see pgbot's file system.
    assert reply.text.startswith("Exported 200,000 rows (") and str(tmp_path) not in reply.text
    assert reply.sql == ("SELECT * FROM items ORDER BY id -- all of them",)
    rows = _read_csv(path)
    assert rows[0] == ["id", "label", "note", "blob", "at"]
    assert len(rows) == 200_001
    assert rows[7][:4] == ["7", 'item, "quoted" 7', "line one\nline two ünï", "\\x00ff10"]
    assert rows[10][2] == ""  # NULL
    other = second.export.path
    assert other != path and [r[0] for r in _read_csv(other)] == ["id", "1", "2", "3"]


async def test_export_holds_no_rows_in_memory(fresh_db: str, tmp_path: Path) -> None:
    await _load(fresh_db)
    agent = build_agent(_settings(fresh_db, tmp_path))
    try:
        await final_reply(agent, message("/sql SELECT 1"))  # pool and caches warm before measuring
        tracemalloc.start()
        try:
            reply = await final_reply(agent, message("/export SELECT i.*, i.label AS again FROM items i"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        await agent.aclose()
    size = reply.export.size_bytes
    assert size > 20_000_000  # a 20+ MB file ...
    assert peak < 6_000_000, peak  # ... written with a few MB of Python memory (1 MiB buffer + asyncpg's)


async def test_export_is_guarded_and_limited_like_a_read(fresh_db: str, tmp_path: Path) -> None:
    await _load(fresh_db, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g;")
    agent = build_agent(_settings(fresh_db, tmp_path, statement_timeout_ms=200))
    agent.settings.limits.export_max_bytes = 2048
    try:
        delete = await final_reply(agent, message("/export DELETE FROM t RETURNING id"))
        explain = await final_reply(agent, message("/export EXPLAIN SELECT * FROM t"))
        two = await final_reply(agent, message("/export SELECT 1; SELECT 2"))
        slow = await final_reply(agent, message("/export SELECT pg_sleep(5)"))
        big = await final_reply(agent, message("/export SELECT * FROM t"))
        usage = await final_reply(agent, message("/export"))
    finally:
        await agent.aclose()
    assert delete.kind is ReplyKind.ERROR and "changes data" in delete.text
    assert explain.kind is ReplyKind.ERROR and "Only queries that return rows" in explain.text
    assert two.kind is ReplyKind.ERROR and "2 statements" in two.text
    assert slow.kind is ReplyKind.ERROR and "statement timeout" in slow.text
    assert big.kind is ReplyKind.ERROR and "configured limit of 2.0 KB" in big.text
    assert usage.kind is ReplyKind.ERROR and "Usage: /export" in usage.text
    assert _files(tmp_path) == []  # refused, timed out or too big: nothing left behind
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM t") == 1000
    finally:
        await conn.close()


async def test_export_runs_as_the_mapped_role(fresh_db: str, tmp_path: Path) -> None:
    role = f"pgbot_exp_{uuid.uuid4().hex[:8]}"
    await _load(fresh_db, f"""
        CREATE TABLE open_data AS SELECT 1 AS id; CREATE TABLE secret AS SELECT 1 AS id;
        CREATE ROLE {role}; GRANT SELECT ON open_data TO {role};
    """)
    agent = build_agent(_settings(fresh_db, tmp_path, roles={"slack:U1": role}))
    try:
        denied = await final_reply(agent, message("/export SELECT * FROM secret"))
        allowed = await final_reply(agent, message("/export SELECT * FROM open_data"))
    finally:
        await agent.aclose()
        await _load(fresh_db, f"DROP OWNED BY {role}; DROP ROLE {role}")
    assert denied.kind is ReplyKind.ERROR and "permission denied" in denied.text
    assert allowed.kind is ReplyKind.RESULT and allowed.export.rows == 1
    assert len(_files(tmp_path)) == 1


async def test_the_model_can_export_with_the_tool(fresh_db: str, tmp_path: Path, llm_server) -> None:
    await _load(fresh_db, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g;")
    llm_server.script(llm.tool_call("export_csv", {"sql": "SELECT id FROM t"}), llm.text("Your file is ready."))
    agent = build_agent(_settings(fresh_db, tmp_path, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("give me all ids as a file"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.sql == ("SELECT id FROM t",)
    tool_text = next(m["content"] for m in llm_server.requests[1]["messages"] if m["role"] == "tool")
    # The model never learns the path, so it cannot repeat it in chat; the answer carries the file for the adapter.
    assert tool_text.startswith("Exported 50 rows (") and str(_resolved(tmp_path)) not in tool_text
    assert "attaches the file" in tool_text
    assert [reply.export.path] == _files(tmp_path) and reply.export.rows == 50


async def test_export_alone_writes_the_full_result_of_the_last_answer(
    fresh_db: str, tmp_path: Path, llm_server
) -> None:
    await _load(fresh_db, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1200) g;")
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT id FROM t ORDER BY id"}), llm.text("All ids."))
    agent = build_agent(_settings(fresh_db, tmp_path, llm_url=llm_server.base_url, max_rows=100))
    thread = uuid.uuid4().hex
    try:
        nothing_yet = await final_reply(agent, message("/export", thread=thread))
        answer = await final_reply(agent, message("list every id", thread=thread))
        exported = await final_reply(agent, message("/export", thread=thread))
    finally:
        await agent.aclose()
    assert nothing_yet.kind is ReplyKind.ERROR and "/export alone after an answer" in nothing_yet.text
    assert answer.table is not None and answer.table.truncated and answer.table.row_count == 100
    assert exported.kind is ReplyKind.RESULT and exported.sql == ("SELECT id FROM t ORDER BY id",)
    rows = _read_csv(exported.export.path)
    assert rows[0] == ["id"] and len(rows) == 1201 and rows[-1] == ["1200"]

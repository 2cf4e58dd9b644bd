"""Red team: one short statement must not blow pgbot's memory (issue 13 finding 6 bounded each cell, not
the result). Each case runs in a fresh process so its peak RSS (VmHWM) is its own.

* 800 text columns of 500 four-byte characters over 500 rows: every cell is cut to ``max_cell_chars``, yet the
  result was ~870 MB in Python. Rows are now fetched within a byte budget and the result says where it cut.
* EXPLAIN folds constants into the plan text: ``EXPLAIN VERBOSE SELECT repeat('x', 100000000)`` arrived as one
  ~100 MB row (~860 MB in the bot with two such columns), through ``/sql``, ``/explain`` (FORMAT JSON), index
  advice and the EXPLAIN run before each read. Every EXPLAIN now runs inside a DO block that cuts each line (or
  refuses a plan over its budget) in the database.
* ``numeric`` was fetched as it is: 800 columns of ``10::numeric ^ 130000`` (130,018 characters each) over 5 rows
  were ~430 MB. A number longer than ``max_cell_chars`` now arrives cut, shown with its length.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from tests.helpers import REPO_ROOT

CHILD = """
import asyncio, json, sys
from bench.common import peak_rss_mb
from bot.wiring import build_agent
from tests.helpers import final_reply, message, settings_for

async def main() -> None:
    agent = build_agent(settings_for(sys.argv[1]))
    try:
        await final_reply(agent, message("/sql SELECT 1"))
        idle = peak_rss_mb()
        reply = await final_reply(agent, message(sys.argv[2] if sys.argv[2].startswith("/") else "/sql " + sys.argv[2]))
    finally:
        await agent.aclose()
    rows = [[str(c)[:80] for c in row[:2]] for row in reply.table.rows] if reply.table else []
    print(json.dumps({"grew_mb": peak_rss_mb() - idle, "kind": reply.kind.value, "text": reply.text[:300],
                      "rows": len(rows), "first": rows[:1],
                      "last": str(reply.table.rows[-1][0])[-40:] if reply.table and reply.table.rows else ""}))

asyncio.run(main())
"""
COLUMNS = ", ".join(["t"] * 800)
WIDE_ROWS = f"SELECT {COLUMNS} FROM (SELECT repeat(chr(128512), 500) AS t) s, generate_series(1, 500)"
LONG_NUMBERS = (f"SELECT 1.5::numeric AS small, {COLUMNS} FROM (SELECT 10::numeric ^ 130000 AS t) s, "
                "generate_series(1, 5)")


async def run_child(dsn: str, sql: str) -> dict[str, object]:
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, dsn, sql, cwd=REPO_ROOT,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(child.communicate(), timeout=120)
    assert child.returncode == 0, err[-2000:]
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("sql", [WIDE_ROWS, LONG_NUMBERS], ids=["800-wide-text-columns", "800-long-numerics"])
async def test_one_short_statement_keeps_memory_bounded(fresh_db: str, sql: str) -> None:
    result = await run_child(fresh_db, sql)
    assert result["kind"] == "result", result
    assert float(result["grew_mb"]) < 80, result  # ~870 MB and ~430 MB before


async def test_a_result_cut_by_size_says_so_and_long_numbers_say_their_length(fresh_db: str) -> None:
    wide = await run_child(fresh_db, WIDE_ROWS)
    rows = int(wide["rows"])  # type: ignore[call-overload]
    assert 0 < rows < 500 and f"cut at {rows}; more rows exist" in str(wide["text"]), wide
    numbers = await run_child(fresh_db, LONG_NUMBERS)
    assert numbers["rows"] == 5, numbers
    assert numbers["first"] == [["1.5", "… (130018 chars)"]], numbers  # 130,001 digits, 16 decimals


# The planner computes immutable functions of constants and prints the value in the plan. A deny list of
# "amplifiers" cannot be complete (nested replace() grows tenfold a level), so the plan is bounded instead.
BIG = "repeat('x', 100000000)"
NESTED = "replace(" * 8 + "'x'" + ", 'x', 'xxxxxxxxxx')" * 8  # 10^8 characters from 80 bytes of SQL
TOO_LARGE = "The query plan is larger than 8 MB"
EXPLAINS = {  # what the person sees: the plan with the long line cut, or a refusal that says why
    "sql-explain-verbose": (f"/sql EXPLAIN VERBOSE SELECT {BIG} a, repeat('y', 100000000) b", "2 rows"),
    "sql-explain-where": (f"/sql EXPLAIN SELECT 1 FROM generate_series(1, 2) g WHERE g::text = {BIG}", "2 rows"),
    "sql-explain-json-nested": (f"/sql EXPLAIN (FORMAT JSON) SELECT 1 WHERE now()::text = {NESTED}", "1 row"),
    "explain-command": (f"/explain SELECT 1 FROM generate_series(1, 2) g WHERE g::text = {BIG}", TOO_LARGE),
    "explain-first": (f"/sql SELECT 1 FROM generate_series(1, 2) g WHERE g::text = {NESTED}", "0 rows"),
    "indexes-command": (f"/indexes SELECT 1 FROM generate_series(1, 2) g WHERE g::text = {BIG}", TOO_LARGE),
}


@pytest.mark.parametrize(("sql", "shown"), list(EXPLAINS.values()), ids=list(EXPLAINS))
async def test_a_plan_with_a_folded_constant_keeps_memory_bounded(fresh_db: str, sql: str, shown: str) -> None:
    result = await run_child(fresh_db, sql)
    assert float(result["grew_mb"]) < 80, result  # 286 to 572 MB before
    assert str(result["text"]).startswith(shown), result
    assert "x" * 10_000 not in json.dumps(result), result


async def test_a_cut_plan_line_says_its_length(fresh_db: str) -> None:
    result = await run_child(fresh_db, f"/sql EXPLAIN VERBOSE SELECT {BIG} a")
    assert float(result["grew_mb"]) < 80, result  # the display cut it too, after 100 MB came whole
    assert result["rows"] == 2, result
    assert result["first"] == [["Result  (cost=0.00..0.01 rows=1 width=32)"]], result
    assert str(result["last"]).endswith("… (100000018 chars)"), result  # "  Output: 'xxx…'::text", cut in SQL

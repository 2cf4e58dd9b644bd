"""A 1,000,000-row result: time to pgbot's capped answer and its peak memory, against fetching it all.

    python -m bench.big_result [--rows 1000000]

Each variant runs in a fresh process so peak RSS (VmHWM) is its own: "idle" is measured after
imports and a warm-up query, "peak" after the big query. Variants: pgbot answering ``/sql SELECT * FROM big``
(row cap 500, server-side cursor) through the whole agent; the floor (a bare asyncpg cursor fetching 501
rows); and the naive baseline, ``conn.fetch`` of every row. Targets: answer ≤ 1 s; peak within 50 MB of idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench.common import machine, peak_rss_mb, print_table, ratio, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
TABLE_SQL = """
CREATE TABLE big AS
SELECT g AS id, md5(g::text) AS hash, (g * 1.5)::numeric(12,2) AS amount,
       timestamptz '2026-01-01' - g * interval '1 minute' AS at, repeat('x', 100) AS note
FROM generate_series(1, {rows}) g;
ANALYZE big;
"""
QUERY = "SELECT * FROM big"


async def _variant(name: str, dsn: str) -> dict[str, float]:
    """Runs in the child process."""
    if name == "pgbot":
        from bot.wiring import build_agent
        from core.config import Settings
        from core.messages import Message, ReplyKind

        agent = build_agent(Settings(databases={"shop": {"dsn": dsn, "max_rows": 500}}))  # type: ignore[dict-item]

        async def ask(text: str) -> int:
            msg = Message(platform="bench", workspace="w", channel="c", thread="t", user="u", text=text)
            final = [r async for r in agent.handle(msg)][-1]
            if final.kind is not ReplyKind.RESULT or final.table is None:
                raise RuntimeError(final.text)
            return final.table.row_count

        try:
            await ask("/sql SELECT 1")
            idle = peak_rss_mb()
            started = time.perf_counter()
            rows = await ask(f"/sql {QUERY}")
            elapsed = time.perf_counter() - started
        finally:
            await agent.aclose()
    else:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.fetch("SELECT 1")
            idle = peak_rss_mb()
            started = time.perf_counter()
            if name == "cursor":
                async with conn.transaction(readonly=True):
                    rows = len(await (await conn.cursor(QUERY)).fetch(501))
            else:
                rows = len(await conn.fetch(QUERY))
            elapsed = time.perf_counter() - started
        finally:
            await conn.close()
    return {"ms": elapsed * 1000, "rows": rows, "idle_mb": idle, "peak_mb": peak_rss_mb()}


def _child(name: str, dsn: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "bench.big_result", "--child", name, "--dsn", dsn], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


async def run(*, rows: int = 1_000_000) -> dict[str, dict[str, float]]:
    async with throwaway_database("pgbot_bench_big") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(TABLE_SQL.format(rows=int(rows)))
        finally:
            await conn.close()
        results = {name: await asyncio.to_thread(_child, name, dsn) for name in ("fetch_all", "cursor", "pgbot")}
    base = results["fetch_all"]
    labels = {"fetch_all": "asyncpg fetch of every row (baseline)", "cursor": "bare cursor, 501 rows (floor)",
              "pgbot": "pgbot /sql, cap 500 (whole agent)"}
    table = [[labels[n], int(r["rows"]), r["ms"], ratio(r["ms"], base["ms"]), r["idle_mb"], r["peak_mb"],
              r["peak_mb"] - r["idle_mb"]] for n, r in results.items()]
    print_table(f"A {rows:,}-row result (targets: pgbot ≤ 1,000 ms, peak − idle ≤ 50 MB) — {machine()}",
                ["variant", "rows", "ms", "vs baseline", "idle MB", "peak MB", "peak − idle MB"], table)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["pgbot", "cursor", "fetch_all"], help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_variant(args.child, args.dsn))))
    else:
        asyncio.run(run(rows=args.rows))


if __name__ == "__main__":
    main()

"""Eight 50 MB cells: pgbot's peak memory answering them, against fetching them as they are.

    python -m bench.wide_cells

``SELECT repeat('x', 50000000) FROM generate_series(1, 8)`` shows a few hundred characters per cell in chat,
so pgbot cuts wide values in the database (``left(x::text, N)``) and never receives 400 MB. Each variant runs
in a fresh process so its peak RSS (VmHWM) is its own: "idle" after a warm-up query, "peak" after the big one.
Target: pgbot's peak within 50 MB of idle (issue 13 measured ~1 GB before the cut moved into the database).
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

from bench.common import admin_dsn, machine, peak_rss_mb, print_table

ROOT = Path(__file__).resolve().parents[1]
QUERY = "SELECT repeat('x', 50000000) AS wide FROM generate_series(1, 8)"


async def _variant(name: str, dsn: str) -> dict[str, float]:
    """Runs in the child process."""
    if name == "pgbot":
        from bot.wiring import build_agent
        from core.config import Settings
        from core.messages import Message, ReplyKind

        agent = build_agent(Settings(databases={"shop": {"dsn": dsn}}))  # type: ignore[dict-item]

        async def ask(text: str) -> int:
            msg = Message(platform="bench", workspace="w", channel="c", thread="t", user="u", text=text)
            final = [r async for r in agent.handle(msg)][-1]
            if final.kind is not ReplyKind.RESULT or final.table is None:
                raise RuntimeError(final.text)
            return max(len(str(cell)) for row in final.table.rows for cell in row)

        try:
            await ask("/sql SELECT 1")
            idle = peak_rss_mb()
            started = time.perf_counter()
            widest = await ask(f"/sql {QUERY}")
            elapsed = time.perf_counter() - started
        finally:
            await agent.aclose()
    else:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.fetch("SELECT 1")
            idle = peak_rss_mb()
            started = time.perf_counter()
            widest = max(len(r[0]) for r in await conn.fetch(QUERY))
            elapsed = time.perf_counter() - started
        finally:
            await conn.close()
    return {"ms": elapsed * 1000, "widest": widest, "idle_mb": idle, "peak_mb": peak_rss_mb()}


def measure(name: str, dsn: str) -> dict[str, float]:
    """One variant in a fresh process (its own peak RSS)."""
    out = subprocess.run([sys.executable, "-m", "bench.wide_cells", "--child", name, "--dsn", dsn], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


async def run(*, dsn: str | None = None) -> dict[str, dict[str, float]]:
    target = dsn or admin_dsn()
    results = {name: await asyncio.to_thread(measure, name, target) for name in ("fetch_all", "pgbot")}
    labels = {"fetch_all": "asyncpg fetch of the cells as they are", "pgbot": "pgbot /sql (cells cut in the database)"}
    table = [[labels[n], int(r["widest"]), r["ms"], r["idle_mb"], r["peak_mb"], r["peak_mb"] - r["idle_mb"]]
             for n, r in results.items()]
    print_table(f"8 cells of 50 MB (target: pgbot peak − idle ≤ 50 MB) — {machine()}",
                ["variant", "widest cell", "ms", "idle MB", "peak MB", "peak − idle MB"], table)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["pgbot", "fetch_all"], help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_variant(args.child, args.dsn))))
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()

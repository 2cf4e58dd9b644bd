"""CSV export of 1,000,000 rows: pgbot's ``/export`` against ``psql \\copy`` of the same query.

    python -m bench.csv_export [--rows 1000000] [--runs 3]

pgbot runs the whole agent path (guard, READ ONLY transaction, role, COPY streamed to a file) in a fresh
process so its peak RSS is its own; ``psql \\copy`` is the baseline in the same run, writing the same CSV.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.big_result import TABLE_SQL
from bench.common import machine, median, peak_rss_mb, print_table, ratio, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
QUERY = "SELECT * FROM big ORDER BY id"


async def _pgbot(dsn: str, directory: str) -> dict[str, float]:
    """Child process: one /export through the agent; reports time, size and memory."""
    from bot.wiring import build_agent
    from core.config import Settings
    from core.messages import ExportFile, Message, ReplyKind

    settings = Settings(databases={"shop": {"dsn": dsn, "statement_timeout_ms": 600_000}},  # type: ignore[dict-item]
                        limits={"export_dir": directory})  # type: ignore[arg-type]
    agent = build_agent(settings)

    async def say(text: str) -> ExportFile | None:
        msg = Message(platform="bench", workspace="w", channel="c", thread="t", user="u", text=text)
        final = [r async for r in agent.handle(msg)][-1]
        if final.kind is not ReplyKind.RESULT:
            raise RuntimeError(final.text)
        return final.export

    try:
        await say("/sql SELECT 1")
        idle = peak_rss_mb()
        started = time.perf_counter()
        export = await say(f"/export {QUERY}")
        elapsed = time.perf_counter() - started
    finally:
        await agent.aclose()
    if export is None:
        raise RuntimeError("/export named no file")
    await asyncio.to_thread(export.path.unlink)
    peak = peak_rss_mb()
    return {"ms": elapsed * 1000, "bytes": float(export.size_bytes), "rows": float(export.rows),
            "idle_mb": idle, "peak_mb": peak}


def _run_pgbot(dsn: str, directory: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "bench.csv_export", "--child", dsn, directory], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _run_psql(dsn: str, directory: str) -> dict[str, float]:
    target = Path(directory) / "psql.csv"
    started = time.perf_counter()
    subprocess.run(["psql", dsn, "-X", "-q", "-c", f"\\copy ({QUERY}) TO '{target}' WITH (FORMAT csv, HEADER)"],
                   check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    size = target.stat().st_size
    target.unlink()
    return {"ms": elapsed * 1000, "bytes": float(size)}


async def run(*, rows: int = 1_000_000, runs: int = 3) -> dict[str, float]:
    if shutil.which("psql") is None:
        raise SystemExit("psql is not installed: the baseline needs it")
    async with throwaway_database("pgbot_bench_export") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(TABLE_SQL.format(rows=int(rows)))
        finally:
            await conn.close()
        with tempfile.TemporaryDirectory(prefix="pgbot-bench-export-") as directory:
            psql, mine = [], []
            for _ in range(runs):  # alternate, so drift in the machine's load hits both alike
                psql.append(await asyncio.to_thread(_run_psql, dsn, directory))
                mine.append(await asyncio.to_thread(_run_pgbot, dsn, directory))
    base_ms = median([r["ms"] for r in psql])
    my_ms = median([r["ms"] for r in mine])
    peak = max(r["peak_mb"] - r["idle_mb"] for r in mine)
    table = [
        ["psql \\copy (baseline)", base_ms, "1.00x", psql[0]["bytes"] / 2**20, "-"],
        ["pgbot /export", my_ms, ratio(my_ms, base_ms), mine[0]["bytes"] / 2**20, f"{peak:.1f}"],
    ]
    print_table(f"CSV export of {rows:,} rows (median of {runs}) — {machine()}",
                ["variant", "ms", "vs psql", "file MB", "pgbot peak − idle MB"], table)
    return {"psql_ms": base_ms, "pgbot_ms": my_ms, "peak_delta_mb": peak, "mb": mine[0]["bytes"] / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("DSN", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_pgbot(*args.child))))
    else:
        asyncio.run(run(rows=args.rows, runs=args.runs))


if __name__ == "__main__":
    main()

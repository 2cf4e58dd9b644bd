"""Introspection of a 2,000-table schema: pgbot's one set-based query vs describing table by table.

    python -m bench.introspection [--tables 2000]

Rows: pgbot's cold catalog load (one query plus building the search index), the fingerprint check that
decides whether to reload, a warm question (cache hit: ranking and rendering only), and the baseline,
introspecting each table on its own with the ``describe_table`` queries (five per table), as a
per-table loop would. Target: cold load ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.common import execute_batches, machine, median, print_table, ratio, throwaway_database
from bench.schema_gen import ddl, generate
from core.config import DatabaseSettings
from core.db.catalog import describe_table, list_tables
from core.db.postgres import PgDatabase
from core.prompt.catalog_cache import CatalogCache, catalog_fingerprint, load_catalog
from core.prompt.schema_context import SchemaContext


async def _timed(runs: int, make: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await make()
        times.append(time.perf_counter() - started)
    return median(times)


async def run(*, n_tables: int = 2000, runs: int = 5) -> dict[str, float]:
    async with throwaway_database("pgbot_bench_introspect") as dsn:
        await execute_batches(dsn, ddl(generate(n_tables)))
        db = PgDatabase("bench", DatabaseSettings(dsn=dsn, pool_max_size=4))
        try:
            await db.pool()
            cold = await _timed(runs, lambda: load_catalog(db, role=None))
            fingerprint = await _timed(runs, lambda: catalog_fingerprint(db))
            context = SchemaContext(cache=CatalogCache(recheck_s=60))
            await context.for_question(db, role=None, question="warm up")
            warm = await _timed(runs * 4, lambda: context.for_question(
                db, role=None, question="Which customers have unpaid invoices older than 60 days?"))

            async def per_table() -> None:
                for table in await list_tables(db, role=None):
                    await describe_table(db, role=None, table=table.qualified)

            baseline = await _timed(1, per_table)
        finally:
            await db.aclose()
    rows = [
        ["per-table describe loop (baseline)", baseline * 1000, "1.00x", f"{n_tables * 5 + 1:,} queries"],
        ["pgbot cold load (1 query + index)", cold * 1000, ratio(cold, baseline), "target ≤ 1,000 ms"],
        ["pgbot change check (fingerprint)", fingerprint * 1000, ratio(fingerprint, baseline),
         "at most every 5 s per database"],
        ["pgbot warm question (cached)", warm * 1000, ratio(warm, baseline), "rank + render"],
    ]
    print_table(f"Introspection of {n_tables:,} tables (median of {runs}) — {machine()}",
                ["what", "ms", "vs baseline", "note"], rows)
    return {"tables": n_tables, "cold_ms": cold * 1000, "fingerprint_ms": fingerprint * 1000,
            "warm_ms": warm * 1000, "baseline_ms": baseline * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=2000)
    asyncio.run(run(n_tables=parser.parse_args().tables))


if __name__ == "__main__":
    main()

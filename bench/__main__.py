"""Run every benchmark in turn: ``python -m bench`` (each one also runs alone: ``python -m bench.<name>``)."""

from __future__ import annotations

import asyncio
import datetime as dt

from bench import (
    big_result,
    cold_start,
    csv_export,
    introspection,
    ops_overhead,
    overhead,
    prompt_cache,
    schema_tokens,
)
from bench.common import machine


def main() -> None:
    print(f"pgbot benchmarks — {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} — {machine()}")
    asyncio.run(schema_tokens.run())
    asyncio.run(introspection.run())
    cold_start.run()
    asyncio.run(big_result.run())
    asyncio.run(csv_export.run())
    asyncio.run(overhead.run())
    asyncio.run(ops_overhead.run())
    asyncio.run(prompt_cache.run())


if __name__ == "__main__":
    main()

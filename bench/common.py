"""What every benchmark shares: the local Postgres, throwaway databases, timing and a plain table printer."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from tests.services import dsn_for_database
from tests.services import throwaway_database as tests_throwaway_database

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_dsn() -> str:
    """``PGBOT_TEST_DSN`` (as the tests use), else the local server."""
    return os.environ.get("PGBOT_TEST_DSN") or DEFAULT_DSN


def dsn_for(database: str, *, base: str | None = None) -> str:
    return dsn_for_database(base or admin_dsn(), database)


@asynccontextmanager
async def throwaway_database(prefix: str = "pgbot_bench") -> AsyncIterator[str]:
    """A new empty database on the local server, dropped afterwards (even when the benchmark fails)."""
    async with tests_throwaway_database(admin_dsn(), prefix=prefix) as dsn:
        yield dsn


async def execute_batches(dsn: str, batches: Sequence[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in batches:
            if sql.strip():
                await conn.execute(sql)
    finally:
        await conn.close()


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A fixed-width table on stdout (no dependency, copy-pastes into Markdown-ish notes)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return bool(text) and text.replace(",", "").replace(".", "").replace("-", "").replace("x", "").isdigit()


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3g}x" if b else "n/a"


def machine() -> str:
    """One line about where the numbers came from."""
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        mem = "RAM unknown"
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {mem}, Python " \
           f"{platform.python_version()}"


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: VmHWM (per address space, so a fresh one after exec), else ru_maxrss.

    ``ru_maxrss`` alone would not do: Linux carries it across ``exec``, so a child started by a big parent
    would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

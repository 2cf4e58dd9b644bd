"""Cold start of ``pgbot --help`` against ``python -c pass``, and what ``ask`` and the chat SDKs would cost.

    python -m bench.cold_start [--runs 15]

Each command runs ``--runs`` times in a fresh interpreter (after one unmeasured run to warm the OS file
cache); the table shows the median and the slowest run, and the extra time over bare ``python -c pass``.
Target: ``pgbot --help`` ≤ 0.3 s more than ``python -c pass``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.common import machine, median, print_table

ROOT = Path(__file__).resolve().parents[1]

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    ("pgbot --help", [sys.executable, "-m", "bot.cli", "--help"]),
    ("pgbot ask --help", [sys.executable, "-m", "bot.cli", "ask", "--help"]),
    ("import the ask path (core, asyncpg, openai client)",
     [sys.executable, "-c", "import bot.commands, bot.wiring, core.llm.openai_client"]),
    ("import slack_bolt + discord (avoided by --help and ask)",
     [sys.executable, "-c", "import slack_bolt, slack_sdk, discord, aiohttp"]),
]


def _time(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def run(*, runs: int = 15) -> dict[str, float]:
    results = {label: _time(argv, runs) for label, argv in COMMANDS}
    base = median(results[COMMANDS[0][0]])
    rows = []
    for label, times in results.items():
        rows.append([label, median(times) * 1000, max(times) * 1000, (median(times) - base) * 1000])
    print_table(f"Cold start, {runs} runs each (target: pgbot --help ≤ +300 ms) — {machine()}",
                ["command", "median ms", "max ms", "+ms over python -c pass"], rows)
    return {"python_ms": base * 1000, "help_ms": median(results["pgbot --help"]) * 1000,
            "help_extra_ms": (median(results["pgbot --help"]) - base) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    run(runs=parser.parse_args().runs)


if __name__ == "__main__":
    main()

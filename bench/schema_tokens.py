"""Prompt tokens per question on a generated 500-table schema, against sending the whole schema; recall.

    python -m bench.schema_tokens [--tables 500] [--verbose]

Baselines in the same run: the full schema in pgbot's own compact one-line-per-table format (what
"send the whole schema" would cost at best) and ``pg_dump --schema-only``. Recall: the share of the tables a
question needs that the prompt shows in detail (columns) and by name at least.
Tokens are estimated as characters / 4 (see ``core.prompt.catalog_cache.estimate_tokens``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess

from bench.common import execute_batches, machine, print_table, ratio, throwaway_database
from bench.schema_gen import QUESTIONS, ddl, generate
from core.config import DatabaseSettings
from core.db.postgres import PgDatabase
from core.prompt.catalog_cache import Catalog, estimate_tokens, load_catalog
from core.prompt.schema_context import DEFAULT_DETAIL_TABLES, DEFAULT_TOKENS, full_dump, render_parts
from core.prompt.system import build_question_context, build_system_prompt


def _detail_names(text: str) -> set[str]:
    """Qualified names of the tables shown with columns (their line starts with ``name(``)."""
    head, _, _ = text.partition("Other tables that may matter (names only")
    return {line.split("(", 1)[0] for line in head.splitlines() if "(" in line and not line.startswith(" ")}


def _named(text: str, qualified: str) -> bool:
    schema, _, table = qualified.partition(".")
    if f"{qualified}(" in text or f"{qualified}," in text or f"{qualified} " in text or text.endswith(qualified):
        return True
    for line in text.splitlines():  # the names-only catalog: "schema: a, b, c"
        names = [n.strip().split(" (+")[0] for n in line[len(schema) + 2:].split(",")]
        if line.startswith(f"{schema}: ") and table in names:
            return True
    return False


def evaluate(catalog: Catalog, *, tokens: int, detail: int, questions: list[tuple[str, tuple[str, ...]]],
             facts: dict[str, str], verbose: bool = False) -> dict[str, float]:
    prompt_tokens: list[int] = []
    context_tokens: list[int] = []
    needed = found_detail = found_named = 0
    misses: list[str] = []
    for question, tables in questions:
        parts = render_parts(catalog, question=question, max_tokens=tokens, detail_tables=detail)
        text = parts.text
        prompt = build_system_prompt(database="bench", databases=["bench"], version=facts["version"],
                                     schema_context=parts.stable) + "\n" + build_question_context(
            now=facts["now"], tz=facts["tz"], schema_detail=parts.question)
        prompt_tokens.append(estimate_tokens(prompt))
        context_tokens.append(estimate_tokens(text))
        shown = _detail_names(parts.question)
        for table in tables:
            needed += 1
            if table in shown:
                found_detail += 1
            else:
                misses.append(f"{question!r}: {table}")
            if table in shown or _named(text, table):
                found_named += 1
    if verbose:
        print("\nNot shown in detail:\n  " + "\n  ".join(misses))
    return {
        "prompt_mean": sum(prompt_tokens) / len(prompt_tokens),
        "prompt_max": max(prompt_tokens),
        "context_mean": sum(context_tokens) / len(context_tokens),
        "recall_detail": found_detail / needed,
        "recall_named": found_named / needed,
    }


def pg_dump_tokens(dsn: str) -> int | None:
    if shutil.which("pg_dump") is None:
        return None
    out = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", dsn],
                         capture_output=True, text=True, check=True).stdout
    return estimate_tokens(out)


async def run(*, n_tables: int = 500, verbose: bool = False) -> dict[str, float]:
    async with throwaway_database("pgbot_bench_schema") as dsn:
        await execute_batches(dsn, ddl(generate(n_tables)))
        db = PgDatabase("bench", DatabaseSettings(dsn=dsn))
        try:
            catalog = await load_catalog(db, role=None)
        finally:
            await db.aclose()
        dump_tokens = await asyncio.to_thread(pg_dump_tokens, dsn)
    full = estimate_tokens(full_dump(catalog))
    facts = {"version": "15", "now": "2026-01-01 00:00:00+00", "tz": "UTC"}
    full_prompt = estimate_tokens(build_system_prompt(database="bench", databases=["bench"], version=facts["version"],
                                                      schema_context=full_dump(catalog)))
    result = evaluate(catalog, tokens=DEFAULT_TOKENS, detail=DEFAULT_DETAIL_TABLES, questions=QUESTIONS,
                      facts=facts, verbose=verbose)
    rows: list[list[object]] = [
        ["full schema, compact lines (baseline)", full_prompt, "1.00x", "100%", "100%"],
    ]
    if dump_tokens is not None:
        rows.append(["pg_dump --schema-only (baseline)", dump_tokens, ratio(dump_tokens, full_prompt), "100%", "100%"])
    rows.append([
        f"pgbot per question (mean; max {result['prompt_max']:,.0f})", round(result["prompt_mean"]),
        ratio(result["prompt_mean"], full_prompt), f"{result['recall_detail']:.0%}", f"{result['recall_named']:.0%}",
    ])
    print_table(
        f"Schema context: {len(catalog.tables)} tables, {len(QUESTIONS)} questions "
        f"(system prompt tokens ≈ chars/4; target ≤ 0.10x of the full schema) — {machine()}",
        ["prompt", "tokens", "vs full", "recall (columns shown)", "recall (named)"],
        rows,
    )
    return {"tables": len(catalog.tables), "full_tokens": full_prompt, "pg_dump_tokens": dump_tokens or 0, **result,
            "ratio": result["prompt_mean"] / full_prompt, "full_context_tokens": full}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--verbose", action="store_true", help="list the needed tables not shown in detail")
    args = parser.parse_args()
    asyncio.run(run(n_tables=args.tables, verbose=args.verbose))


if __name__ == "__main__":
    main()

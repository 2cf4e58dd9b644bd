"""``python -m bench.quality``: the accuracy benchmark from the command line.

    python -m bench.quality --config pgbot.toml                 # the [llm] endpoint of the config
    python -m bench.quality --config pgbot.toml --disable value_hints,examples
    python -m bench.quality --smoke --limit 5                   # offline: scripted server, reference SQL

The demo is loaded into a throwaway database on ``--admin-dsn`` (dropped afterwards), or into ``--dsn``.
Exit status: 0 when the run completed (whatever the scores), 2 for bad arguments or config, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.quality.questions import DEFAULT_FILE, Question, load_questions, select
from bench.quality.report import format_report
from bench.quality.runner import DEFAULT_ADMIN_DSN, SYSTEMS, Report, run_benchmark
from core.config import AccuracySettings, LlmSettings, Settings, load_settings
from core.errors import ConfigError, PgbotError

TECHNIQUES = tuple(name for name, info in AccuracySettings.model_fields.items() if info.annotation is bool)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", metavar="PATH", help="pgbot config: [llm] and [accuracy] are used")
    parser.add_argument("--smoke", action="store_true",
                        help="offline: a scripted server answers with the reference SQL (both should score 100%%)")
    parser.add_argument("--dsn", help="use this database (the demo is loaded into it) instead of a throwaway one")
    parser.add_argument("--admin-dsn", default=os.environ.get("PGBOT_BENCH_ADMIN_DSN", DEFAULT_ADMIN_DSN),
                        help="server where the throwaway database is created (default: $PGBOT_BENCH_ADMIN_DSN "
                             f"or {DEFAULT_ADMIN_DSN})")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the throwaway database")
    parser.add_argument("--questions", metavar="PATH", action="append", type=Path,
                        help=f"question file(s) (default: {DEFAULT_FILE.name}); repeat to add files")
    parser.add_argument("--only", metavar="IDS", help="comma-separated question ids")
    parser.add_argument("--tags", metavar="TAGS", help="comma-separated tags: questions with any of them")
    parser.add_argument("--limit", type=int, metavar="N", help="the first N questions")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="pgbot,baseline (default: both)")
    parser.add_argument("--disable", metavar="NAMES", default="",
                        help=f"accuracy techniques to switch off: {', '.join(TECHNIQUES)}")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the full results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        questions = select(load_questions(args.questions or [DEFAULT_FILE]), only=_csv(args.only),
                           tags=_csv(args.tags), limit=args.limit)
        systems = _csv(args.systems)
        unknown = [s for s in systems if s not in SYSTEMS] + [t for t in _csv(args.disable) if t not in TECHNIQUES]
        if unknown or not systems:
            raise ValueError(f"unknown system or technique: {', '.join(unknown) or '(none given)'}")
        settings = _settings(args)
    except (ValueError, OSError) as exc:
        print(f"bench.quality: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for line in exc.problems:
            print(f"bench.quality: {line}", file=sys.stderr)
        return 2
    if not questions:
        print("bench.quality: no questions selected", file=sys.stderr)
        return 2
    from bot.logs import configure_logging

    configure_logging(settings, level="warning", stream=sys.stderr)  # keep stdout for the report
    try:
        report = asyncio.run(_run(args, settings, questions, systems))
    except (PgbotError, OSError) as exc:
        message = exc.user_message if isinstance(exc, PgbotError) else str(exc)
        print(f"bench.quality: {message}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2, default=str), encoding="utf-8")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    base = load_settings(args.config) if args.config else Settings()
    disabled = {name: False for name in _csv(args.disable)}
    accuracy = base.accuracy.model_copy(update=disabled)
    llm = base.llm
    if args.smoke:  # filled in with the scripted server's URL once it runs
        llm = LlmSettings.model_validate({"model": "scripted-reference", "api_key": "smoke", "max_retries": 0,
                                          "timeout_s": 30, "tool_mode": "native"})
    elif llm.api_key is None and not llm.base_url:
        raise ValueError("no model endpoint: give --config with [llm] base_url and/or api_key, or use --smoke")
    return Settings(llm=llm, accuracy=accuracy)


async def _run(args: argparse.Namespace, settings: Settings, questions: list[Question], systems: list[str]
               ) -> Report:
    from core.llm.openai_client import OpenAIClient

    common: dict[str, Any] = {"questions": questions, "systems": systems, "dsn": args.dsn, "admin_dsn": args.admin_dsn,
              "disabled": _csv(args.disable), "keep_database": args.keep_database, "progress": not args.quiet}
    if not args.smoke:
        endpoint = urlsplit(settings.llm.base_url or "https://api.openai.com/v1").netloc or "?"
        return await run_benchmark(settings=settings, llm=OpenAIClient(settings.llm), endpoint=endpoint,
                                   **common)
    from bench.quality.smoke import reference_responder
    from tests.llm_server import ScriptedLlmServer

    async with ScriptedLlmServer(responder=reference_responder(questions)) as server:
        llm_settings = settings.llm.model_copy(update={"base_url": server.base_url})
        smoke = Settings(llm=llm_settings, accuracy=settings.accuracy)
        return await run_benchmark(settings=smoke, llm=OpenAIClient(llm_settings), smoke=True,
                                   endpoint=urlsplit(server.base_url).netloc, **common)

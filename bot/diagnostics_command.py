"""``pgbot health``, ``pgbot explain "SQL" [--analyze]``, ``pgbot index-advice ["SQL"]``: read-only diagnostics.

They run as the config's login role (whoever holds the config file is the operator) and print the same
plain-language text the chat tools give. Imports of core stay inside the handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import Settings
    from core.db.postgres import PgDatabase

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def add_diagnostics_commands(sub: Any, common: argparse.ArgumentParser) -> dict[str, Handler]:
    """Add the three subcommands to ``sub`` (argparse's subparsers); return their handlers by name."""
    health = sub.add_parser("health", parents=[common], help="health check: locks, bloat, vacuum, cache, top queries")
    health.add_argument("--db", metavar="NAME", help="database (default: the configured default)")
    health.add_argument("--long-query-s", type=float, default=60.0, metavar="S",
                        help="report queries running longer than this (default 60)")

    explain = sub.add_parser("explain", parents=[common], help="EXPLAIN a statement and say what slows it down")
    explain.add_argument("sql", help="the statement, without EXPLAIN")
    explain.add_argument("--analyze", action="store_true",
                         help="run it to measure real times (read queries only; changes are only planned)")
    explain.add_argument("--db", metavar="NAME")

    advice = sub.add_parser("index-advice", parents=[common],
                            help="indexes that would help a query, with the measured cost drop")
    advice.add_argument("sql", nargs="?", help="the query (default: the top queries of pg_stat_statements)")
    advice.add_argument("--db", metavar="NAME")
    return {"health": _health, "explain": _explain, "index-advice": _index_advice}


def _database(settings: Settings, name: str | None) -> PgDatabase:
    from core.db.registry import DatabaseRegistry
    from core.errors import PgbotError

    registry = DatabaseRegistry(settings)
    chosen = name or registry.default
    if chosen is None:
        raise PgbotError("No database chosen: pass --db NAME, or configure a [databases.NAME] section.")
    return registry.get(chosen)  # UnknownDatabaseError names the configured ones


async def _health(args: argparse.Namespace) -> int:
    from bot.commands import load_for_cli
    from core.diagnostics.health import health_check

    db = _database(load_for_cli(args.config), args.db)
    try:
        report = await health_check(db, role=None, long_query_s=args.long_query_s)
    finally:
        await db.aclose()
    print(report.render())
    return 0


async def _explain(args: argparse.Namespace) -> int:
    from bot.commands import load_for_cli
    from core.diagnostics.explain import explain
    from core.sqlguard import SqlGuard

    db = _database(load_for_cli(args.config), args.db)
    try:
        report = await explain(db, SqlGuard(), args.sql, role=None, analyze=args.analyze)
    finally:
        await db.aclose()
    print(report.render())
    return 0


async def _index_advice(args: argparse.Namespace) -> int:
    from bot.commands import load_for_cli
    from core.diagnostics.indexes import advise, top_statements
    from core.errors import PgbotError
    from core.sqlguard import SqlGuard

    db = _database(load_for_cli(args.config), args.db)
    failed = False
    try:
        queries = [args.sql] if args.sql else await top_statements(db, role=None)
        for query in queries:
            if not args.sql:
                print(f"Query: {' '.join(query.split())[:200]}")
            try:
                print((await advise(db, SqlGuard(), query, role=None)).render() + "\n")
            except PgbotError as exc:
                if args.sql:
                    raise
                failed = True
                print(f"Skipped: {exc.user_message}\n")
    finally:
        await db.aclose()
    return 1 if failed and len(queries) == 1 else 0

"""``pgbot health``, ``pgbot explain "SQL" [--analyze]``, ``pgbot index-advice ["SQL"]``: read-only diagnostics.

They run as the config's login role (whoever holds the config file is the operator) and print the same
plain-language text the chat tools give. Imports of core stay inside the handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import Settings
    from core.db.base import PostgresDatabase
    from core.diagnostics.indexes import IndexAdvice

def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add ``health``, ``explain`` and ``index-advice``, each with its handler (:mod:`bot.cli`)."""
    health = sub.add_parser("health", parents=[common], help="health check: locks, bloat, vacuum, cache, top queries")
    health.set_defaults(handler=_health)
    health.add_argument("--db", metavar="NAME", help="database (default: the configured default)")
    health.add_argument("--long-query-s", type=float, default=60.0, metavar="S",
                        help="report queries running longer than this (default 60)")

    explain = sub.add_parser("explain", parents=[common], help="EXPLAIN a statement and say what slows it down")
    explain.set_defaults(handler=_explain)
    explain.add_argument("sql", help="the statement, without EXPLAIN")
    explain.add_argument("--analyze", action="store_true",
                         help="run it to measure real times (read queries only; changes are only planned)")
    explain.add_argument("--db", metavar="NAME")

    advice = sub.add_parser("index-advice", parents=[common],
                            help="indexes that would help a query, with the measured cost drop")
    advice.set_defaults(handler=_index_advice)
    advice.add_argument("sql", nargs="?", help="the query (default: the top queries of pg_stat_statements)")
    advice.add_argument("--db", metavar="NAME")
    advice.add_argument("--create", action="store_true",
                        help="then build the best recommended index (CREATE INDEX CONCURRENTLY), after confirmation")
    advice.add_argument("--yes", action="store_true", help="with --create: do not ask for confirmation")


def _database(settings: Settings, name: str | None) -> PostgresDatabase:
    from core.db.registry import DatabaseRegistry
    from core.errors import PgbotError

    registry = DatabaseRegistry(settings)
    chosen = name or registry.default
    if chosen is None:
        raise PgbotError("No database chosen: pass --db NAME, or configure a [databases.NAME] section.")
    return registry.postgres(chosen)  # UnknownDatabaseError names the configured ones


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

    if args.create and not args.sql:
        raise PgbotError("--create needs the query: pgbot index-advice \"SQL\" --create.")
    settings = load_for_cli(args.config)
    db = _database(settings, args.db)
    failed = False
    advice: IndexAdvice | None = None
    try:
        queries = [args.sql] if args.sql else await top_statements(db, role=None)
        for query in queries:
            if not args.sql:
                print(f"Query: {' '.join(query.split())[:200]}")
            try:
                advice = await advise(db, SqlGuard(), query, role=None)
            except PgbotError as exc:
                if args.sql:
                    raise
                failed = True
                print(f"Skipped: {exc.user_message}\n")
                continue
            print(advice.render() + "\n")
    finally:
        await db.aclose()
    if args.create:
        assert advice is not None
        return await _create(settings, db.name, advice, yes=args.yes)
    return 1 if failed and len(queries) == 1 else 0


async def _create(settings: Settings, database: str, advice: IndexAdvice, *, yes: bool) -> int:
    """Build the best recommendation through the operator approval path (confirmed, audited)."""
    import getpass
    import sys

    from bot.wiring import build_agent
    from core.diagnostics.index_proposal import Requester, propose_index_build
    from core.errors import PgbotError
    from core.messages import ReplyKind

    if not advice.recommended:
        print("Nothing to create: no candidate index is worth building for this query.", file=sys.stderr)
        return 1
    best = advice.recommended[0].candidate
    operator = f"cli:{getpass.getuser()}"
    agent = build_agent(settings, use_llm=False)
    try:
        if agent.approvals is None:
            raise PgbotError("Changes are not enabled in this pgbot.")
        proposal = await propose_index_build(
            agent.databases.postgres(database), table=best.table, columns=best.columns, unique=False,
            requester=Requester(identity=operator, role=None, thread_key=f"cli:{operator}:index-advice"),
            expiry_s=settings.approvals.expiry_s)
        print(proposal.text)
        if proposal.action is None:
            return 0
        print(proposal.action.sql)
        if not yes and not _confirm("Build this index now?"):
            print("Not built.", file=sys.stderr)
            return 1

        async def progress(line: str) -> None:
            print(line, flush=True)

        reply = await agent.approvals.run_as_operator(proposal.action, operator=operator, progress=progress)
    finally:
        await agent.aclose()
    print(reply.text, file=sys.stdout if reply.kind is ReplyKind.OUTCOME else sys.stderr)
    return 0 if reply.kind is ReplyKind.OUTCOME else 1


def _confirm(question: str) -> bool:
    """y/N at the terminal; without a terminal, refuse (scripts must say --yes)."""
    import sys

    from core.errors import PgbotError

    if not sys.stdin.isatty():
        raise PgbotError("Not built: confirmation needs a terminal; pass --yes to build without asking.")
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}

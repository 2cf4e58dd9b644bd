"""``pgbot migrate status|up|down``: arguments and the handler; the work is in :mod:`bot.migrations_cli`,
imported only when the command runs (``pgbot --help`` stays light)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add ``migrate`` with its handler (:mod:`bot.cli`)."""
    migrate = sub.add_parser("migrate", parents=[common], help="show, apply or roll back schema migrations")
    migrate.set_defaults(handler=handle)
    migrate.add_argument("action", choices=["status", "up", "down"],
                         help="status: compare files and database; up: apply pending; down: roll back")
    migrate.add_argument("--db", metavar="NAME", help="database (default: the configured default)")
    migrate.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    migrate.add_argument("--to", metavar="VERSION", type=int,
                         help="up: apply up to and including VERSION; down: roll back every migration above "
                              "VERSION (default: all pending for up, one step for down)")


async def handle(args: argparse.Namespace) -> int:
    from bot.commands import load_for_cli
    from bot.migrations_cli import migrate_main

    return await migrate_main(load_for_cli(args.config), action=args.action, database=args.db, yes=args.yes,
                              to=args.to)

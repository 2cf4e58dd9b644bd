"""The ``pgbot`` command line. Imports stay lazy so ``--help`` and ``ask`` load no chat SDK."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from bot import backup_command, diagnostics_command, migrate_command, schedule_command

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # not subscriptable at run time
Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand is added by a ``register(sub, common)`` in :data:`REGISTER` (this module's own, then one
    per command module), which sets the subcommand's ``handler``: the one way a command joins the CLI."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file (default: $PGBOT_CONFIG or ./pgbot.toml)")
    parser = argparse.ArgumentParser(
        prog="pgbot", description="Chat-ops for PostgreSQL: ask, change and manage databases from chat.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in REGISTER:
        register(sub, common)
    return parser


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """The commands whose arguments are few enough to live here; their handlers are below."""
    chat = sub.add_parser("chat", parents=[common], help="interactive chat in the terminal")
    chat.add_argument("--db", metavar="NAME", help="database to start with")
    chat.set_defaults(handler=_chat)

    ask = sub.add_parser("ask", parents=[common], help="answer one question and exit (for scripts)")
    ask.add_argument("question")
    ask.add_argument("--db", metavar="NAME", help="database to ask (default: the configured default)")
    ask.add_argument("--format", choices=["table", "csv", "json"], default="table")
    ask.set_defaults(handler=_ask)

    check = sub.add_parser("check-config", parents=[common],
                           help="validate the config, try every database and the LLM, name unsafe settings")
    check.add_argument("--strict", action="store_true", help="exit 1 when an unsafe setting is found")
    check.set_defaults(handler=_check_config)

    demo = sub.add_parser("demo", parents=[common],
                          help="chat with the configured database, else an embedded Postgres with sample data")
    demo.add_argument("--data-dir", metavar="DIR",
                      help="embedded Postgres data dir (default ~/.pgbot/embedded; as root /var/lib/pgbot/embedded)")
    demo.add_argument("--load-sample", action="store_true",
                      help="load the sample shop into the configured default database first")
    demo.set_defaults(handler=_demo)

    sub.add_parser("slack", parents=[common], help="run the Slack bot").set_defaults(handler=_slack)
    sub.add_parser("discord", parents=[common], help="run the Discord bot").set_defaults(handler=_discord)

    audit = sub.add_parser("audit", parents=[common], help="print the audit trail of changes and decisions")
    audit.add_argument("--db", metavar="NAME")
    audit.add_argument("--since", metavar="WHEN", help="ISO date/time, or a span like 24h, 7d")
    audit.add_argument("--limit", type=int, default=100)
    audit.add_argument("--format", choices=["table", "csv", "json"], default="table")
    audit.set_defaults(handler=_audit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if not hasattr(args, "config"):
        args.config = None
    handler: Handler = args.handler
    from bot.logs import LOG_FILE, configure_logging

    # Until a command configures its own logging: a traceback goes to the log file, as plain text without
    # local variables (which may hold a DSN) and through the secret filter; never to the terminal.
    configure_logging(None, file=LOG_FILE)
    try:
        return asyncio.run(handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's error policy: one line, never a traceback
        return report_failure(exc)


def report_failure(exc: BaseException) -> int:
    from core.errors import ConfigError, PgbotError

    if isinstance(exc, ConfigError):
        for line in exc.problems:
            print(f"pgbot: {line}", file=sys.stderr)
        return EXIT_CONFIG
    if isinstance(exc, PgbotError):
        print(f"pgbot: {exc.user_message}", file=sys.stderr)
        return EXIT_FAILED
    from bot.logs import LOG_FILE
    from core.agent.render import render_error

    reply = render_error(exc)
    print(f"pgbot: {reply.text} (log: {LOG_FILE})", file=sys.stderr)
    return EXIT_FAILED


async def _chat(args: argparse.Namespace) -> int:
    from bot.commands import chat

    return await chat(config=args.config, database=args.db)


async def _ask(args: argparse.Namespace) -> int:
    from bot.commands import ask

    return await ask(config=args.config, question=args.question, database=args.db, fmt=args.format)


async def _check_config(args: argparse.Namespace) -> int:
    from bot.check_config import check_config

    return await check_config(config=args.config, strict=args.strict)


async def _demo(args: argparse.Namespace) -> int:
    from bot.demo_command import demo

    return await demo(config=args.config, data_dir=Path(args.data_dir) if args.data_dir else None,
                      load_sample=args.load_sample)


async def _slack(args: argparse.Namespace) -> int:
    from bot.servers import slack

    return await slack(config=args.config)


async def _discord(args: argparse.Namespace) -> int:
    from bot.servers import discord

    return await discord(config=args.config)


async def _audit(args: argparse.Namespace) -> int:
    from bot.audit_command import audit_main
    from bot.commands import load_for_cli

    settings = load_for_cli(args.config)
    return await audit_main(settings, database=args.db, since=args.since, limit=args.limit, fmt=args.format)


REGISTER: tuple[Callable[[Subcommands, argparse.ArgumentParser], None], ...] = (
    register, diagnostics_command.register, migrate_command.register, backup_command.register,
    schedule_command.register,
)

if __name__ == "__main__":
    raise SystemExit(main())

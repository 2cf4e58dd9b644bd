"""``pgbot schedule list|pause|resume|delete ID``: schedules from the command line.

Whoever holds the config file is the operator: pause, resume and delete need no creator-or-approver check
here, and each is audited with ``cli:<os user>`` as who acted. Heavy imports stay inside the handler.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.schedules import Schedule


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add ``schedule`` and its actions, with the handler (:mod:`bot.cli`)."""
    schedule = sub.add_parser("schedule", parents=[common], help="list, pause, resume and delete scheduled reports")
    schedule.set_defaults(handler=schedule_main)
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="every schedule, with its next run and state")
    listing.add_argument("--db", metavar="NAME", help="only schedules of this database")
    for name, text in (("pause", "stop running it until resumed"), ("resume", "run it again from its next time"),
                       ("delete", "remove it (the audit trail keeps its history)")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("id", metavar="ID", help="the schedule's id (pgbot schedule list)")


async def schedule_main(args: argparse.Namespace) -> int:
    from bot.commands import load_for_cli
    from core.db.registry import DatabaseRegistry
    from core.schedules import Schedules
    from core.sqlguard import SqlGuard

    settings = load_for_cli(args.config)
    databases = DatabaseRegistry(settings)
    schedules = Schedules(settings=settings, databases=databases, guard=SqlGuard())
    try:
        if args.schedule_command == "list":
            if args.db:
                databases.get(args.db)  # UnknownDatabaseError names the configured ones
            found, problems = await schedules.list(database=args.db)
            for problem in problems:
                print(f"pgbot: {problem}", file=sys.stderr)
            print(format_schedules(found))
            return 1 if problems else 0
        reply = await schedules.change(args.id, args.schedule_command, by=f"cli:{getpass.getuser()}", operator=True)
        print(reply.text)
        return 0
    finally:
        await databases.aclose()


def format_schedules(found: list[Schedule]) -> str:
    if not found:
        return "No schedules."
    lines = []
    for s in found:
        state = f"stopped: {s.stopped_reason}" if s.stopped_reason else ("paused" if s.paused else "active")
        where = f"{s.destination.platform} {s.destination.channel}/{s.destination.thread}"
        lines.append(f"{s.id}  {s.database}  {s.kind.value}  {s.when}  next {s.next_due:%Y-%m-%d %H:%M} UTC  "
                     f"{state}  by {s.created_by} as {s.role or 'login role'}  in {where}")
        sql = " ".join(s.sql.split())
        lines.append(f"    {s.question}" + (f"\n    SQL: {sql}" if sql and sql != s.question else ""))
    return "\n".join(lines)

"""``pgbot backup create|list|verify FILE|restore FILE --into NAME``: backups from the command line.

Whoever holds the config file is the operator: a backup or restore asks for confirmation at the prompt (a
restore over the original asks for the database's name to be typed) or takes ``--yes``, and is then audited
like a chat approval (:meth:`core.approvals.decisions.Approvals.run_as_operator`). ``list`` and ``verify`` only read.
Heavy imports stay inside the handlers so ``pgbot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.approvals.pending import PendingAction
    from core.config import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add ``backup`` and its actions, with the handler (:mod:`bot.cli`)."""
    backup = sub.add_parser("backup", parents=[common], help="back up, list, verify and restore databases")
    backup.set_defaults(handler=backup_main)
    actions = backup.add_subparsers(dest="backup_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", parents=[common], help="pg_dump a database into [backups] dir")
    create.add_argument("--db", metavar="NAME", help="database to back up (default: the configured default)")
    create.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    listing = actions.add_parser("list", parents=[common], help="backups in [backups] dir, newest first")
    listing.add_argument("--db", metavar="NAME", help="only backups of this database")
    verify = actions.add_parser("verify", parents=[common], help="check a backup's checksum and readability")
    verify.add_argument("file", metavar="FILE", help="a backup file name in [backups] dir, or a path")
    restore = actions.add_parser("restore", parents=[common], help="restore a backup into a new database")
    restore.add_argument("file", metavar="FILE", help="a backup file name in [backups] dir, or a path")
    restore.add_argument("--into", metavar="NAME", required=True, help="the database to create and restore into")
    restore.add_argument("--db", metavar="NAME",
                         help="configured database whose server receives the restore (default: the default)")
    restore.add_argument("--overwrite", action="store_true",
                         help="restore over the backup's own database, replacing its contents")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")


async def backup_main(args: argparse.Namespace) -> int:
    from bot.commands import load_for_cli

    settings = load_for_cli(args.config)
    if args.backup_command == "list":
        return list_command(settings, database=args.db)
    if args.backup_command == "verify":
        return await verify_command(settings, file=args.file)
    return await change_command(settings, args)


def list_command(settings: Settings, *, database: str | None) -> int:
    import datetime as dt

    from core.backups.manifest import list_folder
    from core.tools.backups import backups_table

    entries = list_folder(settings.backups.dir, database=database)
    if not entries:
        print(f"No backups in {settings.backups.dir}.")
        return 0
    table = backups_table(entries, now=dt.datetime.now(dt.UTC))
    widths = [max(len(str(v)) for v in (c, *(r[i] for r in table.rows))) for i, c in enumerate(table.columns)]
    for row in (table.columns, *table.rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


async def verify_command(settings: Settings, *, file: str) -> int:
    from core.backups.actions import locate
    from core.backups.manifest import human_size
    from core.backups.verify import verify_backup
    from core.errors import BackupError

    path = locate(settings, file)
    try:
        verified = await verify_backup(path, settings=settings.backups)
    except BackupError as exc:
        print(f"pgbot: {path.name} is NOT usable: {exc.user_message}", file=sys.stderr)
        return 1
    m = verified.manifest
    print(f"{path.name}: ok — {human_size(m.size_bytes)}, sha256 matches, pg_restore {verified.client.version} "
          f"reads {verified.entries} entries; {len(m.tables)} tables, {m.total_rows:,} rows from '{m.database}' "
          f"made {m.created_at:%Y-%m-%d %H:%M} UTC.")
    return 0


async def change_command(settings: Settings, args: argparse.Namespace) -> int:
    """create / restore: propose exactly as chat does, confirm, run once through the audited operator path."""
    import getpass

    from core.approvals.audit import AuditLog
    from core.approvals.decisions import Approvals
    from core.approvals.store import MemoryApprovalStore
    from core.backups.actions import propose_backup_action, propose_restore_action
    from core.db.registry import DatabaseRegistry
    from core.messages import ReplyKind
    from core.tools.backups import backup_executor, restore_executor

    databases = DatabaseRegistry(settings)
    try:
        name = args.db or databases.default
        if name is None:
            from core.errors import PgbotError

            raise PgbotError("No database is configured. Add a [databases.NAME] section to pgbot.toml.")
        db = databases.postgres(name)
        operator = f"cli:{getpass.getuser()}"
        thread = f"cli:{operator}"
        if args.backup_command == "create":
            action, text = await propose_backup_action(db, settings=settings, thread_key=thread,
                                                       requested_by=operator, role=None)
        else:
            action, text = await propose_restore_action(
                db, settings=settings, file=args.file, into=args.into, overwrite=args.overwrite, thread_key=thread,
                requested_by=operator, role=None)
        print(text)
        if not args.yes and not confirm(action, overwrite=getattr(args, "overwrite", False)):
            print("Cancelled; nothing was run.", file=sys.stderr)
            return 1
        approvals = Approvals(settings=settings, databases=databases, store=MemoryApprovalStore(),
                              audit=AuditLog(databases),
                              executors={"backup": backup_executor, "restore": restore_executor})

        async def progress(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        reply = await approvals.run_as_operator(action, operator=operator, progress=progress)
    finally:
        await databases.aclose()
    if reply.kind is ReplyKind.OUTCOME:
        print(reply.text)
        return 0
    print(f"pgbot: {reply.text}", file=sys.stderr)
    return 1


def confirm(action: PendingAction, *, overwrite: bool) -> bool:
    """y/N; a restore over the original needs its database name typed (the second, explicit confirmation)."""
    try:
        if overwrite:
            into = action.params["into"]
            typed = input(f"This REPLACES the contents of {into}. Type the database name to confirm: ")
            return typed.strip() == into
        return input(f"{action.summary}. Go ahead? [y/N] ").strip().lower() in {"y", "yes"}
    except EOFError:
        return False

"""Backup and restore tools: propose a backup or a restore (approved work), list and verify backups.

The work itself is in :mod:`core.backups`; the executors below run it once an approver clicks Approve.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from core.approvals.executors import ExecutionContext, ExecutionOutcome, executor
from core.approvals.pending import PendingAction
from core.backups.actions import (
    BACKUP,
    RESTORE,
    locate,
    propose_backup_action,
    propose_restore_action,
    run_backup,
    run_restore,
)
from core.backups.manifest import Listed, human_age, human_size, list_folder
from core.backups.verify import verify_backup as verify_file
from core.errors import BackupError, ModelHint, UnknownDatabaseError
from core.messages import ResultTable
from core.permissions import resolve_role
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool


def _target(ctx: ToolContext, database: str) -> tuple[str, str | None]:
    """The database named (else the thread's) and the requester's role there."""
    if not database or database == ctx.database.name:
        return ctx.database.name, ctx.actor.role
    try:
        db = ctx.databases.get(database)
    except UnknownDatabaseError as exc:
        raise ModelHint(exc.user_message) from None
    actor = resolve_role(database=db.name, settings=db.settings, identity=ctx.actor.identity,
                         groups=ctx.actor.groups)
    return db.name, actor.role


@tool(kind=ToolKind.ADMIN)
async def propose_backup(ctx: ToolContext, database: str = "") -> ToolOutput:
    """Propose a pg_dump backup of a database; it runs after a person approves.

    Args:
        database: a configured database; empty for the current one
    """
    name, role = _target(ctx, database)
    action, text = await propose_backup_action(
        ctx.databases.postgres(name), settings=ctx.settings, thread_key=ctx.thread_key,
        requested_by=ctx.actor.identity, role=role, requester_groups=ctx.actor.groups)
    ctx.log.info("backup_proposed", action_id=action.id, database=name)
    return ToolOutput(text=text, pause=action)


@tool(kind=ToolKind.READ)
async def list_backups(ctx: ToolContext, database: str = "") -> ToolOutput:
    """List the backups, newest first, with size, age and any problem.

    Args:
        database: only this database's backups; empty for all
    """
    entries = list_folder(ctx.settings.backups.dir, database=database or None)
    if not entries:
        where = f" of '{database}'" if database else ""
        return ToolOutput(text=f"There are no backups{where} in {ctx.settings.backups.dir}.")
    table = backups_table(entries, now=dt.datetime.now(dt.UTC))
    lines = [f"{r[0]}  {r[1]}  {r[2]}  {r[3]}  {r[5]}" for r in table.rows]
    return ToolOutput(text=f"Backups in {ctx.settings.backups.dir} (newest first):\n" + "\n".join(lines), table=table)


def backups_table(entries: list[Listed], *, now: dt.datetime) -> ResultTable:
    rows: list[tuple[str, ...]] = []
    for e in entries:
        m = e.manifest
        rows.append((e.path.name, m.database if m else "?", human_size(e.size_bytes), human_age(e.modified, now),
                     f"{m.total_rows:,}" if m else "", e.problem or "ok"))
    return ResultTable(columns=("file", "database", "size", "age", "rows", "status"), rows=tuple(rows))


@tool(kind=ToolKind.READ)
async def verify_backup(ctx: ToolContext, file: str) -> ToolOutput:
    """Check that a backup file is intact: checksum, manifest, readable by pg_restore.

    Args:
        file: a file name from list_backups
    """
    path = _locate(ctx, file)
    try:
        verified = await verify_file(path, settings=ctx.settings.backups)
    except BackupError as exc:
        return ToolOutput(text=f"{path.name} is NOT usable: {exc.user_message}")
    m = verified.manifest
    return ToolOutput(text=f"{path.name} is intact: {human_size(m.size_bytes)}, sha256 matches the manifest, "
                           f"pg_restore {verified.client.version} reads its {verified.entries} entries; "
                           f"{len(m.tables)} tables, {m.total_rows:,} rows, made {m.created_at:%Y-%m-%d %H:%M} UTC "
                           f"from '{m.database}'.")


@tool(kind=ToolKind.ADMIN)
async def propose_restore(ctx: ToolContext, file: str, into: str, overwrite: bool = False) -> ToolOutput:
    """Propose restoring a backup into a new database, or over the original with overwrite only when the user
    explicitly asks; it runs after a person approves.

    Args:
        file: a file name from list_backups
        into: the database to restore into
        overwrite: true only if the user asked to replace the original database
    """
    path = _locate(ctx, file)
    action, text = await propose_restore_action(
        ctx.postgres(), settings=ctx.settings, file=path.name, into=into, overwrite=overwrite,
        thread_key=ctx.thread_key, requested_by=ctx.actor.identity, role=ctx.actor.role,
        requester_groups=ctx.actor.groups)
    ctx.log.info("restore_proposed", action_id=action.id, into=into, overwrite=overwrite)
    return ToolOutput(text=text, pause=action)


def _locate(ctx: ToolContext, file: str) -> Path:
    """Chat names backups by file name in the backup folder only: never a path elsewhere on the host."""
    names = ", ".join(e.path.name for e in list_folder(ctx.settings.backups.dir)[:10]) or "none"
    if Path(file).expanduser().is_absolute():
        raise ModelHint(f"{file[:80]!r} is a path; give a backup's file name as listed by list_backups. "
                        f"Backups available: {names}.")
    try:
        return locate(ctx.settings, file)
    except BackupError as exc:
        raise ModelHint(f"{exc.user_message} Backups available: {names}.") from None


@executor(BACKUP)
async def backup_executor(action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome:
    """Approved backup: pg_dump with a manifest (core.backups.create)."""
    return await run_backup(action, ctx)


@executor(RESTORE)
async def restore_executor(action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome:
    """Approved restore: verify, then pg_restore (core.backups.restore)."""
    return await run_restore(action, ctx)

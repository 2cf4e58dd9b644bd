"""Backups and restores as approved work: the :class:`PendingAction` each proposal becomes, and running it.

Both need an approver, like any change (``operation="backup"`` / ``"restore"``): a backup copies every row
of a database into a file, and a restore creates or replaces a database. The action's ``sql`` is the command
line that will run (no password); its ``params`` (the file, the target, ``overwrite``) are covered by the
action hash, so none can be altered between the preview and the click. The command line (``pgbot backup``)
confirms at the prompt instead, through :meth:`core.approvals.decisions.Approvals.run_as_operator`.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.approvals.decisions import role_label
from core.approvals.executors import ExecutionContext, ExecutionOutcome
from core.approvals.pending import PendingAction, action_hash
from core.backups.create import create_backup, plan_backup
from core.backups.inspect import database_facts
from core.backups.manifest import human_size, plural, resolve_in_folder
from core.backups.restore import check_restore_target, check_target_name, restore_backup
from core.backups.verify import Verified, verify_backup
from core.config import Settings
from core.db.base import PostgresDatabase
from core.errors import BackupError

BACKUP = "backup"
RESTORE = "restore"


def _action(*, db: PostgresDatabase, settings: Settings, operation: str, sql: str, params: dict[str, str], summary: str,
            thread_key: str, requested_by: str, role: str | None, statement_type: str,
            requester_groups: tuple[str, ...]) -> PendingAction:
    now = time.time()
    return PendingAction(
        database=db.name, thread_key=thread_key, requested_by=requested_by, role=role,
        requester_groups=requester_groups, sql=sql,
        sql_hash=action_hash(sql, operation, params), kind="admin", statement_type=statement_type,
        summary=summary, outside_transaction=True, operation=operation, params=params, created_at=now,
        expires_at=now + settings.approvals.expiry_s,
    )


async def propose_backup_action(
    db: PostgresDatabase, *, settings: Settings, thread_key: str, requested_by: str, role: str | None,
    requester_groups: tuple[str, ...] = (),
) -> tuple[PendingAction, str]:
    """Check everything a backup needs now (grants, client, folder, space) and describe it for approval."""
    plan = await plan_backup(db, settings=settings.backups, role=role)
    facts = plan.facts
    summary = f"BACKUP of '{db.name}': {plural(len(facts.data_tables), 'table')}, ~{human_size(facts.table_bytes)}"
    action = _action(db=db, settings=settings, operation=BACKUP, sql=plan.command(), params={"database": db.name},
                     summary=summary, thread_key=thread_key, requested_by=requested_by, role=role,
                     statement_type="BACKUP", requester_groups=requester_groups)
    readable = ("it runs as the bot's login role; your role " + role + " can read every table (checked just now)"
                if role else "it runs as the bot's login role")
    text = "\n".join([
        f"Back up '{db.name}' (database {facts.dbname}, PostgreSQL {facts.server_version}) with pg_dump "
        f"{plan.client.version} in custom format into {plan.folder}.",
        f"{plural(len(facts.data_tables), 'table')}, about {human_size(facts.table_bytes)} of table data (the dump is "
        "usually smaller: compressed, and indexes are saved as definitions only).",
        *facts.lock_notes(settings.backups.lock_wait_timeout_ms),
        f"Row counts are taken in the same snapshot as the dump and written to a manifest with its sha256; "
        f"{readable}.",
        f"Nothing has run yet: backup {action.id} waits for Approve or Reject.",
    ])
    return action, text


async def run_backup(action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome:
    started = time.perf_counter()
    result = await create_backup(ctx.database, settings=ctx.databases.settings.backups, role=action.role,
                                 requested_by=action.requested_by, report=ctx.report)
    manifest = result.manifest
    return ExecutionOutcome(
        status=f"backup written: {result.path.name} ({human_size(manifest.size_bytes)})",
        duration_ms=(time.perf_counter() - started) * 1000,
        details=(f"{plural(len(manifest.tables), 'table')}, {plural(manifest.total_rows, 'row')}, "
                 f"sha256 {manifest.sha256[:16]}…; "
                 f"manifest {result.path.name}.json in {result.path.parent}."),
    )


def locate(settings: Settings, file: str) -> Path:
    """A backup by name in the backup folder; the command line may also give a path."""
    path = Path(file).expanduser()
    if path.is_absolute():
        return path
    return resolve_in_folder(settings.backups.dir, file)


async def propose_restore_action(
    db: PostgresDatabase, *, settings: Settings, file: str, into: str, overwrite: bool, thread_key: str,
    requested_by: str, role: str | None, requester_groups: tuple[str, ...] = (),
) -> tuple[PendingAction, str]:
    """Verify the backup and check the target now; refusals come before anything is offered for approval."""
    into = check_target_name(into)
    path = locate(settings, file)
    facts = await database_facts(db)
    verified = await verify_backup(path, settings=settings.backups, server_major=facts.server_major)
    await check_restore_target(db, verified.manifest, into=into, overwrite=overwrite)
    manifest = verified.manifest
    made = manifest.created_at.strftime("%Y-%m-%d %H:%M UTC")
    command = f"{verified.client.path} --single-transaction --exit-on-error"
    if overwrite:
        command += f" --clean --if-exists --use-list=<all entries but pgbot.audit> --dbname=<{into}> {path}"
        summary = f"⚠ RESTORE over '{into}': REPLACES its contents with the backup of {made}"
    else:
        command = f"CREATE DATABASE {into} TEMPLATE template0;\n{command} --dbname=<{into}> {path}"
        summary = f"RESTORE {path.name} into the new database '{into}'"
    params = {"file": file, "into": into, "overwrite": "true" if overwrite else "false", "sha256": manifest.sha256}
    action = _action(db=db, settings=settings, operation=RESTORE, sql=command, params=params, summary=summary,
                     thread_key=thread_key, requested_by=requested_by, role=role, statement_type="RESTORE",
                     requester_groups=requester_groups)
    lines = [f"Backup {path.name}: made {made} from '{manifest.database}' (PostgreSQL {manifest.server_version}), "
             f"{plural(len(manifest.tables), 'table')}, {plural(manifest.total_rows, 'row')}, "
             f"{human_size(manifest.size_bytes)}.",
             f"Verified just now: size and sha256 match the manifest; pg_restore {verified.client.version} reads "
             f"its {verified.entries} entries."]
    if overwrite:
        lines += [f"⚠ This REPLACES the contents of {into}: every object in the backup is dropped and recreated "
                  f"with the backup's rows, so changes made to them since {made} are lost. Objects created after "
                  "the backup stay as they are; pgbot's audit trail is kept.",
                  f"It runs in one transaction: if anything fails, {into} is left exactly as it was."]
    else:
        lines += [f"pgbot creates the database '{into}' on the server of '{db.name}' and restores into it in one "
                  "transaction; if the restore fails, the half-made database is dropped.",
                  f"'{into}' will not be in pgbot's config: add a [databases.{into}] section to query it."]
    requested = f" (requested by {requested_by} as {role_label(role)})" if role else ""
    lines.append(f"It runs as the bot's login role{requested}. "
                 f"Nothing has run yet: restore {action.id} waits for Approve or Reject.")
    return action, "\n".join(lines)


async def run_restore(action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome:
    started = time.perf_counter()
    settings = ctx.databases.settings
    try:
        path = locate(settings, action.params["file"])
        into, overwrite = action.params["into"], action.params["overwrite"] == "true"
    except KeyError as exc:
        raise BackupError("This restore request is incomplete; nothing was run.") from exc
    result = await restore_backup(ctx.database, path, into=into, overwrite=overwrite, settings=settings.backups,
                                  report=ctx.report, expected_sha256=action.params.get("sha256"))
    where = f"over '{into}'" if overwrite else f"into the new database '{into}'"
    details = [f"Check: {result.summary()}."]
    if not result.owners_kept:
        details.append("Objects belong to the bot's login role (it is not a superuser, so --no-owner was used); "
                       "grants were restored.")
    if not overwrite:
        details.append(f"'{into}' is not in pgbot's config. To query it, add:\n[databases.{into}]\n"
                       f'dsn = "{result.dsn_hint}"  # with the password, if any, of \'{ctx.database.name}\'')
    details.append("Run ANALYZE on it soon: restored tables have no planner statistics yet.")
    return ExecutionOutcome(
        status=f"restored {path.name} {where}" + ("" if not result.mismatches else
                                                  f" ({len(result.mismatches)} tables differ from the manifest)"),
        duration_ms=(time.perf_counter() - started) * 1000, details="\n".join(details),
    )


__all__ = ["BACKUP", "RESTORE", "Verified", "locate", "propose_backup_action", "propose_restore_action",
           "run_backup", "run_restore"]

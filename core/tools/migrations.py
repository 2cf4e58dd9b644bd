"""Migrations from chat: the model drafts up and down SQL, pgbot checks and writes them, a person approves.

``propose_migration`` refuses a draft before anyone sees it if a statement does not parse, is not a change,
fails when tried, or if the down does not bring the schema back (all fed back to the model so it can fix
the SQL). A draft that passes is written to ``<migrations_dir>/.proposed/<action id>/`` and offered for
approval; the ``migration`` executor re-reads the files, refuses if they changed, applies up (recorded in
``pgbot.migrations`` in the same transaction) and moves the pair into the folder. The same executor runs
``pgbot migrate up/down`` from the command line on the folder's files.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.approvals.decisions import role_label
from core.approvals.executors import ExecutionContext, ExecutionOutcome, executor
from core.approvals.pending import PendingAction, action_hash, new_action_id
from core.errors import (
    ConfigError,
    DatabaseError,
    MigrationFileError,
    ModelHint,
    PgbotError,
    refused_as_hint,
)
from core.migrations import files, runner, store
from core.migrations.analysis import MigrationAnalysis, analyse, is_irreversible
from core.migrations.check import StepFailed, try_up_and_down
from core.migrations.files import MigrationFile
from core.migrations.status import status_lines
from core.sqlguard import SqlGuard
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool

OPERATION = "migration"
# SQLSTATE classes the model can fix by rewriting: data (22), integrity (23), syntax/names (42), unsupported (0A).
_FIXABLE = ("0A", "22", "23", "42")
_FINAL_EVENTS = {"rejected", "expired", "failed", "executed"}  # a draft with one of these can never run


@tool(kind=ToolKind.DDL)
async def propose_migration(ctx: ToolContext, name: str, up_sql: str, down_sql: str) -> ToolOutput:
    """Draft a schema change as an up/down migration, applied after a person approves. Use it instead of propose_change
    for schema changes in a database with migrations.

    Args:
        name: a short file name, e.g. add_discount_to_orders
        up_sql: the statements that make the change; no BEGIN/COMMIT
        down_sql: the statements that undo up_sql exactly
    """
    db = ctx.database
    try:
        folder_path = files.migrations_dir(db.name, db.settings)
    except ConfigError as exc:  # the model may fall back to propose_change, and tells the user which key to set
        raise ModelHint(f"{exc.user_message} Tell the user; for a one-off change use propose_change.") from None
    up_analysis, down_analysis = _analyse_pair(ctx.guard, up_sql, down_sql)  # down None: irreversible
    folder = files.load_folder(folder_path)
    lines = runner.compare(folder, await store.applied(db))
    problems = runner.blocking_problems(lines)
    pending = [line.label for line in lines if line.state is runner.MigrationState.PENDING]
    if pending:
        problems.append(f"{', '.join(pending)} in {folder_path} {'is' if len(pending) == 1 else 'are'} not applied "
                        "yet; a new migration is checked against the current schema, so apply them first "
                        "(pgbot migrate up).")
    if problems:
        raise PgbotError("No migration was written: " + " ".join(problems))
    check_text = await _check(ctx, up_analysis, down_analysis)
    await _clean_drafts(ctx, folder_path)
    slug = files.slugify(name)
    version = folder.next_version()
    up_text = _with_mark(up_sql, up_analysis)
    down_text = _with_mark(down_sql, down_analysis) if down_analysis else down_sql.strip() + "\n"
    action_id = new_action_id()
    draft = files.write_draft(folder_path, action_id=action_id, version=version, name=slug, up_sql=up_text,
                              down_sql=down_text)
    label = f"{version:04d}_{slug}"
    params = {"direction": "up", "source": "draft", "draft": action_id, "version": str(version), "name": slug,
              "checksum": files.checksum(up_text, down_text)}
    now = time.time()
    action = PendingAction(
        id=action_id, database=db.name, thread_key=ctx.thread_key, requested_by=ctx.actor.identity,
        role=ctx.actor.role, requester_groups=ctx.actor.groups, sql=up_text,
        sql_hash=action_hash(up_text, OPERATION, params),
        kind=up_analysis.kind, statement_type="Migration",
        summary=summary(label, up_analysis, irreversible=down_analysis is None),
        tables=up_analysis.tables, lock=up_analysis.strongest_lock, operation=OPERATION, params=params,
        outside_transaction=up_analysis.outside_transaction, created_at=now,
        expires_at=now + ctx.settings.approvals.expiry_s,
    )
    text = "\n".join([
        f"Migration {label} for '{db.name}', to run as {role_label(ctx.actor.role)}.",
        f"Files written for review: {draft.up_path} and {draft.down_path.name}; they move into {folder_path} "
        "when approved (a rejected or expired draft is never applied).",
        *preview_lines(up_analysis, down_analysis, irreversible=down_analysis is None),
        check_text,
        f"Nothing has run yet: migration {action.id} waits for Approve or Reject.",
    ])
    ctx.log.info("migration_proposed", action_id=action.id, migration=label, sql_hash=action.sql_hash)
    return ToolOutput(text=text, pause=action)


@tool(kind=ToolKind.READ)
async def migration_status(ctx: ToolContext) -> ToolOutput:
    """Show the database's migrations: applied, pending, edited, or awaiting approval."""
    db = ctx.database
    try:
        folder_path = files.migrations_dir(db.name, db.settings)
    except ConfigError as exc:
        return ToolOutput(text=exc.user_message)
    folder = files.load_folder(folder_path)
    lines = runner.compare(folder, await store.applied(db))
    drafts = files.list_drafts(folder_path)
    outcomes = await store.decisions(db, [d.action_id for d in drafts])
    text = status_lines(db.name, folder, lines, drafts, outcomes=outcomes, expiry_s=ctx.settings.approvals.expiry_s)
    return ToolOutput(text="\n".join(text))


async def _clean_drafts(ctx: ToolContext, folder_path: Path) -> None:
    """Remove drafts that can no longer be approved: expired, or decided (rejected, failed) per the audit trail."""
    drafts = files.list_drafts(folder_path)
    outcomes = await store.decisions(ctx.database, [d.action_id for d in drafts])
    decided = {action_id for action_id, event in outcomes.items() if event.split()[0] in _FINAL_EVENTS}
    removed = files.remove_dead_drafts(folder_path, older_than_s=ctx.settings.approvals.expiry_s + 60,
                                       decided=decided)
    if removed:
        ctx.log.info("migration_drafts_removed", drafts=removed)


def summary(label: str, analysis: MigrationAnalysis, *, irreversible: bool = False) -> str:
    count = len(analysis.statements)
    where = f" on {', '.join(analysis.tables[:3])}" if analysis.tables else ""
    flag = (" ⚠ DATA LOSS" if analysis.data_loss else "") + (" ⚠ IRREVERSIBLE" if irreversible else "")
    return f"MIGRATION {label}: {count} statement{'s' if count != 1 else ''}{where}{flag}"


def preview_lines(up: MigrationAnalysis, down: MigrationAnalysis | None, *, irreversible: bool = False,
                  heading: str = "Up (what runs when approved):") -> list[str]:
    """The approval preview: loud data-loss flags first, then each statement with its lock and effects."""
    lines: list[str] = []
    if up.data_loss:
        lines.append("⚠⚠ THIS MIGRATION DESTROYS OR OVERWRITES DATA ⚠⚠")
        lines += [f"  {loss}" for loss in up.data_loss]
    if irreversible:
        lines.append("⚠ IRREVERSIBLE: it has no down migration, so `pgbot migrate down` will refuse to roll it back.")
    lines.append(heading)
    lines += up.describe(indent="  ")
    if up.outside_transaction:
        lines.append("  Marked no-transaction: it cannot run inside a transaction, so its statements run one by one "
                     "and a failure part-way is not rolled back.")
    if down is not None:
        lines.append("Down (what `pgbot migrate down` runs to undo it):")
        lines += down.describe(indent="  ")
    return lines


def _analyse_pair(guard: SqlGuard, up_sql: str,
                  down_sql: str) -> tuple[MigrationAnalysis, MigrationAnalysis | None]:
    """Guard every statement of both directions; problems go back to the model. Down None: irreversible."""
    found: list[MigrationAnalysis | None] = []
    for direction, sql in (("up", up_sql), ("down", down_sql)):
        if not sql.strip():
            raise ModelHint(f"Refused: the {direction} migration is empty. Write SQL that " + (
                "makes the change." if direction == "up" else "undoes the up migration exactly (only if it truly "
                "cannot be undone, e.g. ALTER TYPE ... ADD VALUE, send a down_sql that is just the comment "
                "'-- irreversible: <why>')."))
        with refused_as_hint(context=f" ({direction} migration)"):
            if direction == "down" and is_irreversible(sql, guard):
                found.append(None)
                continue
            analysis = analyse(sql, guard, marked_no_transaction=files.has_no_transaction_mark(sql))
        if analysis.outside_transaction and len(analysis.statements) > 1:
            raise ModelHint(f"Refused ({direction} migration): a statement in it cannot run inside a transaction "
                            "(CONCURRENTLY, VACUUM); put that statement in a migration of its own.")
        found.append(analysis)
    up = found[0]
    assert up is not None
    return up, found[1]


async def _check(ctx: ToolContext, up: MigrationAnalysis, down: MigrationAnalysis | None) -> str:
    """Try up then down in a rolled-back transaction as the requester's role; say what was checked."""
    if up.outside_transaction or (down is not None and down.outside_transaction):
        return ("Checked by parsing only: a no-transaction migration cannot be tried in a transaction that is "
                "rolled back, so errors such as a missing column will only show when it runs.")
    db = ctx.postgres()
    try:
        result = await try_up_and_down(db, up=[s.sql for s in up.statements],
                                       down=[s.sql for s in down.statements] if down else [], role=ctx.actor.role)
    except StepFailed as exc:
        where = f"statement {exc.number} of the {exc.direction} migration ({exc.sql[:200]})"
        if exc.sqlstate[:2] in _FIXABLE:
            raise ModelHint(f"The migration failed when tried (rolled back, nothing changed): {where}: "
                            f"{exc.message}. Fix the SQL and propose it again.") from None
        raise DatabaseError(f"The migration could not be checked on '{ctx.database.name}', so it is not offered "
                            f"for approval: {where}: {exc.message}") from None
    if down is None:
        return (f"Checked: up ran as {role_label(ctx.actor.role)} in a transaction that was rolled back; there is "
                "no down to check.")
    if not result.undone:
        raise ModelHint("Refused: the down migration does not undo the up migration. After up and then down, "
                        "the schema differs from before: " + "; ".join(result.leftovers)
                        + ". Write a down_sql that restores the schema exactly, and propose it again (only if "
                        "PostgreSQL cannot undo it at all, send down_sql '-- irreversible: <why>').")
    changed = "" if result.changed else " (up changes no schema object: it only changes data)"
    return (f"Checked: up, then down, ran as {role_label(ctx.actor.role)} in a transaction that was rolled back; "
            f"down restores the schema exactly{changed}.")


def _with_mark(sql: str, analysis: MigrationAnalysis) -> str:
    text = sql.strip() + "\n"
    if analysis.outside_transaction and not files.has_no_transaction_mark(text):
        note = "-- (added by pgbot: a statement below cannot run inside a transaction)"
        text = f"{files.NO_TRANSACTION_MARK}\n{note}\n{text}"
    return text


# --- the executor -----------------------------------------------------------------------------------------


@executor(OPERATION)
async def run_migration(action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome:
    """Apply (up) or revert (down) one approved migration, after checking its files are what was approved."""
    params = action.params
    direction, version, expected = params.get("direction"), int(params.get("version", "0")), params.get("checksum")
    folder_path = files.migrations_dir(ctx.database.name, ctx.database.settings)
    guard = SqlGuard()
    if direction == "up" and params.get("source") == "draft":
        return await _apply_draft(action, ctx, folder_path, guard)
    folder = files.load_folder(folder_path)
    migration = folder.get(version)
    if migration is None or migration.name != params.get("name"):
        raise MigrationFileError(f"Migration {version:04d}_{params.get('name')} is no longer in {folder_path}; "
                                 "nothing was run.")
    if migration.checksum != expected:
        raise MigrationFileError(f"{migration.label} changed after it was shown for confirmation (checksum "
                                 "differs); nothing was run. Run the command again to see the current files.")
    lines = runner.compare(folder, await store.applied(ctx.database))
    line = next(line for line in lines if line.version == version)
    if line.state is runner.MigrationState.CHANGED:
        raise MigrationFileError(runner.blocking_problems([line])[0] + " Nothing was run.")
    if direction == "up":
        problems = runner.blocking_problems(lines)
        if problems:
            raise MigrationFileError(" ".join(problems) + " Nothing was run.")
        return await _apply(action, ctx, migration, guard)
    if migration.down_sql is None or is_irreversible(migration.down_sql, guard):
        raise MigrationFileError(f"{migration.label} is irreversible (it has no down statements), so it cannot be "
                                 "rolled back; nothing was run.")
    down = analyse(migration.down_sql, guard, marked_no_transaction=files.has_no_transaction_mark(migration.down_sql))
    await ctx.report(f"rolling back {migration.label}")
    result = await runner.revert(ctx.database, migration, [s.sql for s in down.statements], role=action.role,
                                 outside_transaction=down.outside_transaction)
    return ExecutionOutcome(status=result.status, duration_ms=result.duration_ms,
                            details=f"Removed from pgbot.migrations; the files stay in {folder_path} as pending.")


async def _apply(action: PendingAction, ctx: ExecutionContext, migration: MigrationFile,
                 guard: SqlGuard, *, promote: files.Draft | None = None) -> ExecutionOutcome:
    """Run up and record it. A draft moves into the folder in the same transaction; a no-transaction draft
    moves first, because what its statements do cannot be taken back: if it fails it stays there as pending."""
    up = analyse(migration.up_sql, guard, marked_no_transaction=files.has_no_transaction_mark(migration.up_sql))
    folder = migration.up_path.parent
    moved: list[MigrationFile] = []

    async def move_files() -> None:
        if promote is not None:
            moved.append(files.promote_draft(promote, folder=folder, version=migration.version))

    await ctx.report(f"applying {migration.label}")
    if up.outside_transaction:
        await move_files()
    try:
        result = await runner.apply(ctx.database, migration, [s.sql for s in up.statements], role=action.role,
                                    applied_by=ctx.decided_by, outside_transaction=up.outside_transaction,
                                    before_commit=None if up.outside_transaction else move_files)
    except BaseException as exc:
        if moved and promote is not None and not up.outside_transaction:
            files.unpromote(moved[0], promote)  # moved, but the transaction did not commit: back to the draft
        if moved and up.outside_transaction and isinstance(exc, PgbotError):
            raise type(exc)(f"{exc.user_message} Its files are in {folder} as a pending migration: clean up, "
                            "then run `pgbot migrate up`.") from exc
        raise
    return ExecutionOutcome(status=result.status, duration_ms=result.duration_ms,
                            details=f"Recorded in pgbot.migrations; files: {migration.up_path}.")


async def _apply_draft(action: PendingAction, ctx: ExecutionContext, folder_path: Path,
                       guard: SqlGuard) -> ExecutionOutcome:
    """A migration proposed in chat: the draft must be byte-for-byte what was approved."""
    draft = files.find_draft(folder_path, action.params.get("draft", ""))
    if draft is None or not draft.down_path.exists():
        raise MigrationFileError(f"The files of migration {action.params.get('name')} are no longer in "
                                 f"{folder_path / files.PROPOSED_DIR}; nothing was run. Ask for it again.")
    up_sql, down_sql = draft.up_path.read_text(encoding="utf-8"), draft.down_path.read_text(encoding="utf-8")
    if files.checksum(up_sql, down_sql) != action.params.get("checksum") or up_sql != action.sql:
        raise MigrationFileError(f"The files of migration {draft.version:04d}_{draft.name} were edited after "
                                 "approval was requested (checksum differs); nothing was run. Ask for it again.")
    folder = files.load_folder(folder_path)
    recorded = await store.applied(ctx.database)
    lines = runner.compare(folder, recorded)
    problems = runner.blocking_problems(lines)
    pending = [line.label for line in lines if line.state is runner.MigrationState.PENDING]
    if pending:
        problems.append(f"{', '.join(pending)} must be applied first (pgbot migrate up).")
    if problems:
        raise MigrationFileError(" ".join(problems) + " Nothing was run.")
    taken = {m.version for m in folder.migrations} | {r.version for r in recorded}
    version = draft.version if draft.version > max(taken, default=0) else max(taken) + 1  # never out of order
    target = MigrationFile(version=version, name=draft.name, up_path=folder_path / f"{version:04d}_{draft.name}.up.sql",
                           down_path=folder_path / f"{version:04d}_{draft.name}.down.sql", up_sql=up_sql,
                           down_sql=down_sql)
    outcome = await _apply(action, ctx, target, guard, promote=draft)
    if version != draft.version:
        outcome = ExecutionOutcome(status=outcome.status, duration_ms=outcome.duration_ms,
                                   details=f"{outcome.details} Numbered {version:04d}: {draft.version:04d} was "
                                           "taken meanwhile.")
    return outcome

"""``pgbot migrate status|up|down`` at work: the migrations folder against ``pgbot.migrations``.

``up`` and ``down`` list what will run (each statement's lock, rewrites and data-loss flags), ask
``Apply N migrations to 'shop'? [y/N]`` / ``Roll back N migrations on 'shop'? [y/N]`` (:func:`question`)
unless ``--yes``, and run each migration through
:meth:`core.approvals.decisions.Approvals.run_as_operator`, so it is audited like a chat approval.
"""

from __future__ import annotations

import getpass
import sys
import time
from collections.abc import Callable

from core.approvals.audit import AuditLog
from core.approvals.decisions import Approvals
from core.approvals.pending import PendingAction, action_hash
from core.approvals.store import MemoryApprovalStore
from core.config import Settings
from core.db.base import Database
from core.db.registry import DatabaseRegistry
from core.errors import ConfigError, PgbotError
from core.messages import ReplyKind
from core.migrations import files, runner, store
from core.migrations.analysis import MigrationAnalysis, analyse, is_irreversible
from core.migrations.files import MigrationFile
from core.migrations.status import status_lines
from core.sqlguard import SqlGuard
from core.tools.migrations import OPERATION, preview_lines
from core.tools.registry import load_tools

Ask = Callable[[str], str]


async def migrate_main(settings: Settings, *, action: str, database: str | None, yes: bool, to: int | None,
                       ask: Ask = input) -> int:
    """0: done (or nothing to do); 1: refused, declined or failed; config problems raise ConfigError (2)."""
    databases = DatabaseRegistry(settings)
    try:
        if not database and databases.default is None:
            raise ConfigError("No database is configured: add a [databases.NAME] section with a dsn and a "
                              "migrations_dir to pgbot.toml.")
        db = databases.get(database or databases.default or "")
        folder_path = files.migrations_dir(db.name, db.settings)
        folder = files.load_folder(folder_path)
        lines = runner.compare(folder, await store.applied(db))
        if action == "status":
            return await _status(settings, db, folder, lines)
        for name in folder.ignored:
            print(f"pgbot: ignored in {folder_path}: {name}", file=sys.stderr)
        problems = runner.blocking_problems(lines)
        if problems:
            for problem in problems:
                print(f"pgbot: {problem}", file=sys.stderr)
            print("pgbot: nothing was run.", file=sys.stderr)
            return 1
        if action == "up":
            return await _up(settings, databases, db, runner.plan_up(lines, to=to), yes=yes, ask=ask)
        return await _down(settings, databases, db, runner.plan_down(lines, to=to), yes=yes, ask=ask)
    finally:
        await databases.aclose()


async def _status(settings: Settings, db: Database, folder: files.Folder, lines: list[runner.StatusLine]) -> int:
    drafts = files.list_drafts(folder.path)
    outcomes = await store.decisions(db, [d.action_id for d in drafts])
    text = status_lines(db.name, folder, lines, drafts, outcomes=outcomes, expiry_s=settings.approvals.expiry_s)
    for line in text:
        is_problem = line.startswith(("Problem: ", "Ignored: "))
        print(f"pgbot: {line}" if is_problem else line, file=sys.stderr if is_problem else sys.stdout)
    return 1 if runner.blocking_problems(lines) else 0


def question(action: str, *, count: int, database: str) -> str:
    """The ``[y/N]`` question of ``up`` / ``down`` (the README quotes both: tests/test_docs_true.py)."""
    migrations = f"{count} migration{'s' if count != 1 else ''}"
    if action == "up":
        return f"Apply {migrations} to '{database}'?"
    return f"Roll back {migrations} on '{database}'?"


def _confirm(text: str, *, yes: bool, ask: Ask) -> bool:
    if yes:
        return True
    try:
        answer = ask(f"{text} [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


async def _up(settings: Settings, databases: DatabaseRegistry, db: Database, plan: list[MigrationFile], *,
              yes: bool, ask: Ask) -> int:
    if not plan:
        print(f"Nothing to apply: '{db.name}' is up to date.")
        return 0
    guard = SqlGuard()
    analyses = [_analyse(m.label, m.up_sql, guard) for m in plan]
    for migration, analysis in zip(plan, analyses, strict=True):
        print(f"{migration.label}:")
        irreversible = migration.down_sql is None or is_irreversible(migration.down_sql, guard)
        print("\n".join("  " + line for line in preview_lines(analysis, None, irreversible=irreversible)))
    if not _confirm(question("up", count=len(plan), database=db.name), yes=yes, ask=ask):
        print("Cancelled: nothing was run.")
        return 1
    actions = [_action(db.name, m, a, direction="up", sql=m.up_sql) for m, a in zip(plan, analyses, strict=True)]
    return await _run(settings, databases, actions)


async def _down(settings: Settings, databases: DatabaseRegistry, db: Database, plan: list[runner.StatusLine], *,
                yes: bool, ask: Ask) -> int:
    if not plan:
        print(f"Nothing to roll back on '{db.name}'.")
        return 0
    guard = SqlGuard()
    actions = []
    for line in plan:
        migration = line.file
        if migration is None or migration.down_sql is None:
            missing = "its files are" if migration is None else "its down file is"
            print(f"pgbot: {line.label} cannot be rolled back: {missing} not in {db.settings.migrations_dir}; "
                  "nothing was run.", file=sys.stderr)
            return 1
        if is_irreversible(migration.down_sql, guard):
            print(f"pgbot: {line.label} is irreversible (its down file holds no statement, only a comment); "
                  "nothing was run.", file=sys.stderr)
            return 1
        analysis = _analyse(migration.label, migration.down_sql, guard)
        print(f"{migration.label} (down):")
        print("\n".join("  " + text for text in preview_lines(analysis, None, heading="Down (what runs now):")))
        actions.append(_action(db.name, migration, analysis, direction="down", sql=migration.down_sql))
    if not _confirm(question("down", count=len(plan), database=db.name), yes=yes, ask=ask):
        print("Cancelled: nothing was run.")
        return 1
    return await _run(settings, databases, actions)


def _analyse(label: str, sql: str, guard: SqlGuard) -> MigrationAnalysis:
    try:
        return analyse(sql, guard, marked_no_transaction=files.has_no_transaction_mark(sql))
    except PgbotError as exc:
        raise PgbotError(f"{label}: {exc.user_message} Nothing was run.") from exc


def _action(database: str, migration: MigrationFile, analysis: MigrationAnalysis, *, direction: str,
            sql: str) -> PendingAction:
    operator = f"cli:{getpass.getuser()}"
    params = {"direction": direction, "source": "folder", "version": str(migration.version),
              "name": migration.name, "checksum": migration.checksum}
    now = time.time()
    verb = "MIGRATION" if direction == "up" else "ROLLBACK"
    return PendingAction(
        database=database, thread_key="cli:migrate", requested_by=operator, role=None, sql=sql,
        sql_hash=action_hash(sql, OPERATION, params), kind=analysis.kind, statement_type="Migration",
        summary=f"{verb} {migration.label}", tables=analysis.tables, lock=analysis.strongest_lock,
        outside_transaction=analysis.outside_transaction, operation=OPERATION, params=params, created_at=now,
        expires_at=now + 3600,
    )


async def _run(settings: Settings, databases: DatabaseRegistry, actions: list[PendingAction]) -> int:
    """One migration after the other; the first failure stops the rest."""
    approvals = Approvals(settings=settings, databases=databases, store=MemoryApprovalStore(),
                          audit=AuditLog(databases), executors=load_tools().executors)

    async def progress(text: str) -> None:
        print(f"  … {text}")

    for action in actions:
        reply = await approvals.run_as_operator(action, operator=action.requested_by, progress=progress)
        if reply.kind is ReplyKind.ERROR:
            print(f"pgbot: {reply.text}", file=sys.stderr)
            remaining = len(actions) - actions.index(action) - 1
            if remaining:
                print(f"pgbot: stopped; {remaining} more migration(s) were not run.", file=sys.stderr)
            return 1
        print(reply.text)
    return 0

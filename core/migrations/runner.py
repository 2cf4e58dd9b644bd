"""Apply or revert one migration and record it; compare the folder with ``pgbot.migrations``.

A transactional migration runs with its ``pgbot.migrations`` row in one transaction, under an advisory lock
that serialises migrations on the database (chat, command line and replicas alike). A migration that cannot
run in a transaction (CREATE INDEX CONCURRENTLY) runs statement by statement in autocommit and is recorded
after its last statement; if one fails, the statements before it stay done, and the error says so.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import asyncpg

from core.db.base import PostgresDatabase
from core.db.postgres import SQL_TAG, QueryLimits, describe_connect_error, quote_ident, translate_pg_error
from core.errors import DatabaseUnavailableError, PgbotError
from core.migrations import store
from core.migrations.files import Folder, MigrationFile
from core.migrations.store import AppliedMigration


class MigrationState(enum.StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    CHANGED = "changed after apply"  # the file's checksum differs from the one recorded when it ran
    MISSING = "file missing"  # recorded as applied, but no file in the folder


@dataclass(frozen=True, slots=True)
class StatusLine:
    version: int
    name: str
    state: MigrationState
    applied: AppliedMigration | None = None
    file: MigrationFile | None = None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def compare(folder: Folder, recorded: Sequence[AppliedMigration]) -> list[StatusLine]:
    """Every version in the folder or the table, in order, with its state."""
    by_version = {r.version: r for r in recorded}
    lines = []
    for version in sorted({m.version for m in folder.migrations} | set(by_version)):
        file, row = folder.get(version), by_version.get(version)
        if file is None:
            assert row is not None
            lines.append(StatusLine(version, row.name, MigrationState.MISSING, applied=row))
        elif row is None:
            lines.append(StatusLine(version, file.name, MigrationState.PENDING, file=file))
        elif row.checksum != file.checksum:
            lines.append(StatusLine(version, file.name, MigrationState.CHANGED, applied=row, file=file))
        else:
            lines.append(StatusLine(version, file.name, MigrationState.APPLIED, applied=row, file=file))
    return lines


def blocking_problems(lines: Sequence[StatusLine]) -> list[str]:
    """Why nothing may run: an applied file was edited, or a pending migration sits below an applied one."""
    problems = [f"{line.label} was edited after it was applied (its checksum differs from the recorded one); "
                "restore the applied version of the file, or add a new migration for the change."
                for line in lines if line.state is MigrationState.CHANGED]
    top = max((line.version for line in lines if line.applied is not None), default=0)
    problems += [f"{line.label} is pending but a later migration ({top:04d}) is already applied; pgbot applies "
                 "migrations in order only: renumber it after the last applied one."
                 for line in lines if line.state is MigrationState.PENDING and line.version < top]
    return problems


def plan_up(lines: Sequence[StatusLine], *, to: int | None = None) -> list[MigrationFile]:
    return [line.file for line in lines if line.state is MigrationState.PENDING and line.file is not None
            and (to is None or line.version <= to)]


def plan_down(lines: Sequence[StatusLine], *, to: int | None = None) -> list[StatusLine]:
    """Applied migrations to revert, newest first: one step by default, or everything above ``to``."""
    applied = [line for line in reversed(lines) if line.applied is not None]
    return applied[:1] if to is None else [line for line in applied if line.version > to]


@dataclass(frozen=True, slots=True)
class RunResult:
    status: str
    duration_ms: float


async def apply(db: PostgresDatabase, migration: MigrationFile, statements: Sequence[str], *, role: str | None,
                applied_by: str, outside_transaction: bool,
                before_commit: Callable[[], Awaitable[None]] | None = None) -> RunResult:
    """Run ``statements`` (the up file's) as ``role`` and record the migration; exactly once per database."""
    label = migration.label

    async def record(conn: asyncpg.Connection, duration_ms: float) -> None:
        await store.record_on(conn, version=migration.version, name=migration.name, checksum=migration.checksum,
                              applied_by=applied_by, duration_ms=duration_ms, no_transaction=outside_transaction)

    return await _run(db, statements, role=role, version=migration.version, label=label, direction="up",
                      outside_transaction=outside_transaction, finish=record, before_commit=before_commit)


async def revert(db: PostgresDatabase, migration: MigrationFile, statements: Sequence[str], *, role: str | None,
                 outside_transaction: bool) -> RunResult:
    """Run the down file's ``statements`` and delete the migration's row."""

    async def forget(conn: asyncpg.Connection, duration_ms: float) -> None:
        await store.forget_on(conn, migration.version)

    return await _run(db, statements, role=role, version=migration.version, label=migration.label,
                      direction="down", outside_transaction=outside_transaction, finish=forget)


Finish = Callable[[asyncpg.Connection, float], Awaitable[None]]


def migration_limits(db: PostgresDatabase) -> QueryLimits:
    """Index builds and rewrites outlast a query: ``migration_timeout_ms``, else ``change_timeout_ms``;
    lock_timeout stays short, so a migration never queues behind a long transaction while blocking everyone."""
    timeout = db.settings.migration_timeout_ms
    return replace(db.limits, statement_timeout_ms=timeout) if timeout else db.change_limits


async def _run(db: PostgresDatabase, statements: Sequence[str], *, role: str | None, version: int, label: str,
               direction: str, outside_transaction: bool, finish: Finish,
               before_commit: Callable[[], Awaitable[None]] | None = None) -> RunResult:
    await store.ensure_table(db)
    limits = migration_limits(db)
    if outside_transaction:
        return await _run_autocommit(db, statements, role=role, version=version, label=label, limits=limits,
                                     direction=direction, finish=finish, before_commit=before_commit)

    async def work(conn: asyncpg.Connection) -> RunResult:
        await conn.execute(f"RESET ROLE; SELECT pg_advisory_xact_lock({store.LOCK_KEY})")
        _expect(await store.is_recorded_on(conn, version), direction=direction, label=label)
        if role:
            await conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")
        started = time.perf_counter()
        for sql in statements:
            await conn.execute(SQL_TAG + sql)
        duration_ms = (time.perf_counter() - started) * 1000
        await db.verify_identity(conn, role=role, sql="\n".join(statements), main_login=True)
        await conn.execute("RESET ROLE")  # pgbot.migrations belongs to the login role, not the user's
        await finish(conn, duration_ms)
        if before_commit is not None:
            await before_commit()
        return RunResult(status=_status(direction, label, len(statements)), duration_ms=duration_ms)

    # The main login: pgbot.migrations is written as it in the same transaction. Identity verified in work.
    return await db.run(work, role=role, read_only=False, limits=limits, verify=False, main_login=True)


async def _run_autocommit(db: PostgresDatabase, statements: Sequence[str], *, role: str | None, version: int,
                          label: str, limits: QueryLimits, direction: str, finish: Finish,
                          before_commit: Callable[[], Awaitable[None]] | None) -> RunResult:
    pool = await db.pool()
    done, running = 0, False
    try:
        async with pool.acquire(timeout=db.settings.connect_timeout_s) as conn:
            # The timeout bounds the wait for another migration's advisory lock too.
            await conn.execute(f"SET statement_timeout = {int(limits.statement_timeout_ms)}; "
                               f"SET lock_timeout = {int(limits.lock_timeout_ms)}; "
                               f"SELECT pg_advisory_lock({store.LOCK_KEY})")
            try:
                _expect(await store.is_recorded_on(conn, version), direction=direction, label=label)
                if role:
                    await conn.execute(f"SET ROLE {quote_ident(role)}")
                started, running = time.perf_counter(), True
                for sql in statements:
                    await conn.execute(SQL_TAG + sql)
                    done += 1
                duration_ms, running = (time.perf_counter() - started) * 1000, False
                await conn.execute("RESET ROLE; RESET statement_timeout; RESET lock_timeout")
                async with conn.transaction():
                    await finish(conn, duration_ms)
                    if before_commit is not None:
                        await before_commit()
            finally:
                await conn.execute("RESET ROLE; RESET statement_timeout; RESET lock_timeout; "
                                   f"SELECT pg_advisory_unlock({store.LOCK_KEY})")
    except asyncpg.PostgresError as exc:
        error = translate_pg_error(exc, database=db.name)
        if running:
            before = f"the {done} statement(s) before it stay done, " if done else ""
            raise type(error)(f"{error.user_message} Statement {done + 1} of {label} ({direction}) failed outside a "
                              f"transaction: {before}the migration is not recorded, and a failed CONCURRENTLY build "
                              "leaves an INVALID index to drop before retrying.") from exc
        raise error from exc
    except (OSError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise DatabaseUnavailableError(
            f"Database '{db.name}' connection failed: {describe_connect_error(exc)}") from exc
    return RunResult(status=_status(direction, label, len(statements)), duration_ms=duration_ms)


def _expect(recorded: bool, *, direction: str, label: str) -> None:
    if direction == "up" and recorded:
        raise PgbotError(f"Migration {label} is already applied on this database; nothing was run.")
    if direction == "down" and not recorded:
        raise PgbotError(f"Migration {label} is not applied on this database; nothing was run.")


def _status(direction: str, label: str, count: int) -> str:
    verb = "applied" if direction == "up" else "rolled back"
    return f"{verb} {label} ({count} statement{'s' if count != 1 else ''})"


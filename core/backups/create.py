"""Make a backup: pg_dump (custom format) into the backup folder, with a manifest of exact row counts.

Consistency: pgbot opens a REPEATABLE READ transaction, exports its snapshot, counts every table's rows in
it, and runs ``pg_dump --snapshot`` on that same snapshot, so the manifest's counts are exactly the rows in
the dump even while the database keeps changing. The dump is written as ``<name>.dump.partial`` and renamed
only when pg_dump succeeded and its checksum is taken; a failed run leaves nothing that looks like a backup.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from core.backups.clients import Client, choose_client
from core.backups.conninfo import ClientTarget, client_target
from core.backups.inspect import DatabaseFacts, check_role_can_read, database_facts
from core.backups.manifest import (
    PARTIAL_SUFFIX,
    Manifest,
    TableCount,
    create_private,
    ensure_folder,
    human_size,
    new_dump_name,
    plural,
    write_manifest,
)
from core.backups.proc import run_client
from core.config import BackupSettings
from core.db.base import PostgresDatabase
from core.db.postgres import quote_ident, translate_pg_error
from core.errors import BackupError

log = structlog.get_logger(__name__)
Report = Callable[[str], Awaitable[None]]
_DUMPING_RE = re.compile(r'dumping contents of table "(.+)"')
_FREE_SPACE_MARGIN = 64 * 1024 * 1024
_MAX_MS = 2**31 - 1  # the largest statement_timeout Postgres accepts


@dataclass(frozen=True, slots=True)
class BackupPlan:
    """What was checked before a backup: enough to describe it and to run it."""

    facts: DatabaseFacts
    client: Client
    folder: Path
    target: ClientTarget

    def command(self, file: str = "<database>-<time>.dump") -> str:
        """The pg_dump command line as it will run (no password: that goes in the environment)."""
        return (f"{self.client.path} --format=custom --snapshot=<exported at run time> --verbose "
                f"--file={self.folder / file} --dbname='{self.target.uri}'")


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    manifest: Manifest


async def plan_backup(db: PostgresDatabase, *, settings: BackupSettings, role: str | None) -> BackupPlan:
    """Every check that can fail before anything is written: grants, client version, folder, free space."""
    await check_role_can_read(db, role)
    facts = await database_facts(db)
    client = await choose_client("pg_dump", pg_bin_dir=settings.pg_bin_dir, server_major=facts.server_major)
    folder = ensure_folder(settings.dir)
    check_free_space(folder, needed=facts.table_bytes)
    return BackupPlan(facts=facts, client=client, folder=folder,
                      target=client_target(db.settings.dsn.get_secret_value(), server_major=facts.server_major))


def check_free_space(folder: Path, *, needed: int) -> None:
    """Refuse when the folder's disk has less room than the tables' size (an upper bound for a compressed
    dump, which leaves indexes out), so a full disk is found before a long dump, not after."""
    free = shutil.disk_usage(folder).free
    if free < needed + _FREE_SPACE_MARGIN:
        raise BackupError(f"Not enough free space for this backup in {folder}: {human_size(free)} free, and the "
                          f"tables hold about {human_size(needed)}. Free some space or point [backups] dir "
                          "at a larger disk.")


async def create_backup(
    db: PostgresDatabase, *, settings: BackupSettings, role: str | None, requested_by: str, report: Report,
) -> BackupResult:
    """Check, then dump ``db`` with a manifest; progress lines go to ``report``."""
    plan = await plan_backup(db, settings=settings, role=role)
    facts = plan.facts
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    final = plan.folder / new_dump_name(db.name, now)
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    await report(f"Backing up '{db.name}' with pg_dump {plan.client.version}: "
                 f"{plural(len(facts.data_tables), 'table')}, about {human_size(facts.table_bytes)} of table data.")
    for note in facts.lock_notes(settings.lock_wait_timeout_ms):
        await report(note)
    try:
        create_private(partial)  # pg_dump writes into it and keeps its 0600
        counts = await _dump_in_snapshot(db, plan, partial, settings=settings, report=report)
        size = partial.stat().st_size
        digest = await asyncio.to_thread(sha256_of, partial)
        os.replace(partial, final)
    except BaseException:
        _remove_quietly(partial)
        raise
    manifest = Manifest(
        file=final.name, database=db.name, dbname=facts.dbname, created_at=now, size_bytes=size, sha256=digest,
        server_version=facts.server_version, server_version_num=facts.server_version_num,
        pg_dump_version=plan.client.version, encoding=facts.encoding, collate=facts.collate, ctype=facts.ctype,
        requested_by=requested_by, duration_s=round(time.perf_counter() - started, 3), tables=counts,
    )
    try:
        write_manifest(manifest, final)
    except OSError as exc:
        _remove_quietly(final)
        raise BackupError(f"The dump was written but its manifest could not be ({exc.strerror or exc}); the dump "
                          "was removed, since it could not be verified later.") from exc
    log.info("backup_created", database=db.name, file=final.name, size=size, tables=len(counts))
    return BackupResult(path=final, manifest=manifest)


async def _dump_in_snapshot(
    db: PostgresDatabase, plan: BackupPlan, partial: Path, *, settings: BackupSettings, report: Report
) -> list[TableCount]:
    """Count rows and run pg_dump on one exported snapshot; the snapshot lives as long as its transaction."""
    pool = await db.pool()
    try:
        async with pool.acquire(timeout=db.settings.connect_timeout_s) as conn, \
                conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute(
                f"SET LOCAL statement_timeout = {min(int(settings.timeout_s * 1000), _MAX_MS)}; "
                f"SET LOCAL lock_timeout = {int(settings.lock_wait_timeout_ms)}; "
                "SET LOCAL idle_in_transaction_session_timeout = 0")
            snapshot: str = await conn.fetchval("SELECT pg_export_snapshot()")
            counts = [
                TableCount(schema=t.schema, name=t.name, rows=int(await conn.fetchval(
                    f"SELECT count(*) FROM {quote_ident(t.schema)}.{quote_ident(t.name)}")))
                for t in plan.facts.data_tables
            ]
            await report(f"Counted {plural(sum(c.rows for c in counts), 'row')} in {plural(len(counts), 'table')}; "
                         "dumping…")
            await run_pg_dump(plan.client, plan.target, output=partial, snapshot=snapshot,
                              tables=len(counts), settings=settings, report=report)
    except asyncpg.PostgresError as exc:
        raise translate_pg_error(exc, database=db.name) from exc
    except (OSError, asyncpg.InterfaceError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise BackupError(f"Writing the backup failed: {exc.strerror or exc}.") from exc
        raise BackupError(f"The connection to '{db.name}' failed during the backup: {type(exc).__name__}.") from exc
    return counts


async def run_pg_dump(
    client: Client, target: ClientTarget, *, output: Path, snapshot: str | None, tables: int,
    settings: BackupSettings, report: Report,
) -> None:
    """pg_dump in custom format to ``output``; "dumping contents of table" lines become throttled progress."""
    done = 0
    last = time.monotonic()

    async def on_line(line: str) -> None:
        nonlocal done, last
        match = _DUMPING_RE.search(line)
        if match is None:
            return
        done += 1
        now = time.monotonic()
        if now - last >= settings.progress_interval_s:
            last = now
            await report(f"Dumped {done - 1} of {tables} tables; now {match.group(1)}.")

    args = ["--format=custom", "--verbose", "--no-password", f"--file={output}",
            f"--lock-wait-timeout={int(settings.lock_wait_timeout_ms)}"]
    if snapshot is not None:
        args.append(f"--snapshot={snapshot}")
    args.append(f"--dbname={target.uri}")
    result = await run_client(client, args, target=target, timeout_s=settings.timeout_s, on_line=on_line,
                              what="pg_dump")
    if result.returncode != 0:
        text = " / ".join(result.errors[-3:]) or f"exit status {result.returncode}"
        if any("no space left" in line.lower() for line in result.errors):
            raise BackupError(f"The disk holding {output.parent} is full: pg_dump could not finish ({text}). "
                              "The partial file was removed; free some space or point [backups] dir elsewhere.")
        raise BackupError(f"pg_dump failed: {text}. The partial file was removed.")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_quietly(path: Path) -> None:
    """Clean up after a failure without hiding that failure."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        log.error("backup_partial_not_removed", path=str(path), error=exc.strerror or str(exc))

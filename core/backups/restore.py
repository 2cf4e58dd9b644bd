"""Restore a verified backup into a new database, or (a second, explicit confirmation) over its original.

Both run ``pg_restore --single-transaction --exit-on-error``: a restore either completes or changes nothing.

- **Into a new database**: pgbot creates it (same encoding and locale as the original), restores, and drops
  it again if the restore fails, so no half-made database is left behind.
- **Over the original** (``overwrite``): ``--clean --if-exists`` drops and recreates every object in the
  backup inside that one transaction; if anything fails, the original is untouched. pgbot's live audit
  trail (``pgbot.audit``) is left out, so the record of this very restore survives it. Objects created
  after the backup are not in it and stay as they are.

Ownership: when the bot's login role is a superuser, objects keep their original owners; otherwise they
are restored with ``--no-owner`` and belong to the login role (grants are restored either way).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from core.backups.conninfo import client_target, with_database
from core.backups.inspect import BOOKKEEPING_SCHEMA, database_facts
from core.backups.manifest import Manifest
from core.backups.proc import run_client
from core.backups.verify import Verified, verify_backup
from core.config import BackupSettings
from core.db.base import PostgresDatabase
from core.db.postgres import describe_connect_error, quote_ident, translate_pg_error
from core.errors import BackupError

log = structlog.get_logger(__name__)
Report = Callable[[str], Awaitable[None]]
_TARGET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PROCESSING_RE = re.compile(r'processing data for table "(.+)"')
# pgbot's audit trail in a listing: "215; 1259 19451 TABLE pgbot audit postgres", "... INDEX pgbot audit_at_idx ..."
_LIVE_AUDIT_RE = re.compile(rf"^\d+; \d+ \d+ (?:SCHEMA - {BOOKKEEPING_SCHEMA} |[A-Z ]+ {BOOKKEEPING_SCHEMA} audit[ _])")


@dataclass(frozen=True, slots=True)
class Mismatch:
    table: str
    expected: int
    found: int | None  # None: the table is missing


@dataclass(frozen=True, slots=True)
class RestoreResult:
    into: str
    overwrite: bool
    manifest: Manifest
    duration_s: float
    mismatches: tuple[Mismatch, ...]
    owners_kept: bool
    dsn_hint: str  # a password-free URI of the restored database, for the config

    def summary(self) -> str:
        tables = len(self.manifest.tables)
        if not self.mismatches:
            rows = self.manifest.total_rows
            check = f"all {tables} tables have the row counts recorded in the manifest ({rows:,} rows)"
        else:
            lines = ", ".join(f"{m.table}: {m.expected:,} expected, "
                              + ("missing" if m.found is None else f"{m.found:,} found") for m in self.mismatches[:10])
            check = f"{len(self.mismatches)} of {tables} tables differ from the manifest: {lines}"
        return check


def check_target_name(into: str) -> str:
    into = into.strip()
    if not _TARGET_RE.fullmatch(into) or len(into.encode()) > 63:
        raise BackupError(f"{into[:80]!r} is not a usable database name: use letters, digits, '_' or '-' "
                          "(at most 63 bytes), starting with a letter or '_'.")
    return into


async def target_exists(db: PostgresDatabase, into: str) -> bool:
    async def work(conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", into))

    return await db.run(work, role=None, read_only=True)


async def check_restore_target(db: PostgresDatabase, manifest: Manifest, *, into: str, overwrite: bool) -> None:
    """The rules on where a backup may go; refusals name the fix. Nothing is touched here."""
    facts = await database_facts(db)
    exists = await target_exists(db, into)
    if overwrite:
        if into != manifest.dbname or into != facts.dbname:
            raise BackupError(
                f"Refused: overwrite only restores a backup over the database it was taken from "
                f"('{manifest.dbname}', through the configured database '{db.name}'); '{into}' is not that. "
                "Restore into a new database instead.")
        if not exists:
            raise BackupError(f"Database '{into}' does not exist, so there is nothing to overwrite.")
        return
    if exists:
        hint = (" To replace its contents with this backup, ask again explicitly for an overwrite (command "
                "line: --overwrite)."
                if into == manifest.dbname and into == facts.dbname else "")
        raise BackupError(f"Refused: database '{into}' already exists, and a restore never writes into an "
                          f"existing database without a second confirmation. Choose a new name.{hint}")


async def restore_backup(
    db: PostgresDatabase, dump: Path, *, into: str, overwrite: bool, settings: BackupSettings, report: Report,
    expected_sha256: str | None = None,
) -> RestoreResult:
    """Verify ``dump``, check the target, restore, and compare the row counts with the manifest.

    ``expected_sha256``: the checksum of the backup that was shown for approval; another file put in its
    place since (with a manifest of its own) is refused."""
    into = check_target_name(into)
    facts = await database_facts(db)
    verified = await verify_backup(dump, settings=settings, server_major=facts.server_major)
    if expected_sha256 is not None and verified.manifest.sha256 != expected_sha256:
        raise BackupError(f"{dump.name} is not the backup that was shown for approval (its checksum changed "
                          "since); nothing was restored. Ask for the restore again.")
    await check_restore_target(db, verified.manifest, into=into, overwrite=overwrite)
    started = time.perf_counter()
    dsn = db.settings.dsn.get_secret_value()
    owners_kept = facts.login_is_superuser
    if overwrite:
        await report(f"Restoring {dump.name} over '{into}' in one transaction…")
        await _pg_restore(verified, dsn, into=into, settings=settings, report=report, owners_kept=owners_kept,
                          clean=True)
    else:
        await _create_database(db, into, verified.manifest)
        await report(f"Created database '{into}'; restoring {dump.name} into it…")
        try:
            await _pg_restore(verified, dsn, into=into, settings=settings, report=report, owners_kept=owners_kept,
                              clean=False)
        except BaseException as exc:
            dropped = await _drop_quietly(db, into)
            if isinstance(exc, BackupError):
                outcome = (f"The half-made database '{into}' was dropped." if dropped else
                           f"The half-made database '{into}' could NOT be dropped; drop it by hand.")
                raise BackupError(f"{exc.user_message} {outcome}") from exc
            raise
    mismatches = await compare_counts(dsn, into, verified.manifest)
    return RestoreResult(into=into, overwrite=overwrite, manifest=verified.manifest,
                         duration_s=time.perf_counter() - started, mismatches=mismatches, owners_kept=owners_kept,
                         dsn_hint=client_target(dsn, dbname=into).uri)


async def _create_database(db: PostgresDatabase, into: str, manifest: Manifest) -> None:
    options = " TEMPLATE template0"
    if manifest.encoding:
        options += f" ENCODING {_literal(manifest.encoding)}"
    if manifest.collate and manifest.ctype:
        options += f" LC_COLLATE {_literal(manifest.collate)} LC_CTYPE {_literal(manifest.ctype)}"
    pool = await db.pool()
    try:
        async with pool.acquire(timeout=db.settings.connect_timeout_s) as conn:
            await conn.execute(f"CREATE DATABASE {quote_ident(into)}{options}")
    except asyncpg.DuplicateDatabaseError as exc:
        raise BackupError(f"Refused: database '{into}' was created by someone else just now.") from exc
    except asyncpg.PostgresError as exc:
        raise BackupError(f"Database '{into}' could not be created: "
                          f"{translate_pg_error(exc, database=db.name).user_message}") from exc


async def _drop_quietly(db: PostgresDatabase, into: str) -> bool:
    pool = await db.pool()
    try:
        async with pool.acquire(timeout=db.settings.connect_timeout_s) as conn:
            await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(into)} WITH (FORCE)")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        log.error("restore_cleanup_failed", database=into, error=describe_connect_error(exc))
        return False
    return True


async def _pg_restore(
    verified: Verified, dsn: str, *, into: str, settings: BackupSettings, report: Report, owners_kept: bool,
    clean: bool,
) -> None:
    target = client_target(dsn, dbname=into, server_major=verified.server_major)
    env = dict(target.env)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + f" -c lock_timeout={int(settings.lock_wait_timeout_ms)}").strip()
    target = type(target)(uri=target.uri, env=env, secrets=target.secrets)
    args = ["--single-transaction", "--exit-on-error", "--verbose", "--no-password"]
    if not owners_kept:
        args.append("--no-owner")
    tables = len(verified.manifest.tables)
    done = 0
    last = time.monotonic()

    async def on_line(line: str) -> None:
        nonlocal done, last
        match = _PROCESSING_RE.search(line)
        if match is None:
            return
        done += 1
        if time.monotonic() - last >= settings.progress_interval_s:
            last = time.monotonic()
            await report(f"Restored {done - 1} of {tables} tables; now {match.group(1)}.")

    with tempfile.TemporaryDirectory(prefix="pgbot-restore-") as scratch:
        if clean:
            args += ["--clean", "--if-exists"]
            listing = Path(scratch) / "entries.list"
            listing.write_text("\n".join(e for e in verified.listing if not _LIVE_AUDIT_RE.match(e)) + "\n",
                               encoding="utf-8")
            args.append(f"--use-list={listing}")
        args += [f"--dbname={target.uri}", str(verified.path)]
        result = await run_client(verified.client, args, target=target, timeout_s=settings.timeout_s,
                                  on_line=on_line, what="pg_restore")
    if result.returncode != 0:
        text = " / ".join(result.errors[-3:]) or f"exit status {result.returncode}"
        undone = " Its transaction was rolled back, so the database is as it was." if clean else ""
        raise BackupError(f"pg_restore failed: {text}.{undone}")


async def compare_counts(dsn: str, into: str, manifest: Manifest) -> tuple[Mismatch, ...]:
    """Count the restored tables' rows and list those that differ from the manifest."""
    try:
        conn = await asyncpg.connect(with_database(dsn, into), timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise BackupError(f"The restore finished, but '{into}' could not be opened to check it: "
                          f"{describe_connect_error(exc)}.") from exc
    mismatches: list[Mismatch] = []
    try:
        for table in manifest.tables:
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL",
                                         f"{quote_ident(table.schema_name)}.{quote_ident(table.name)}")
            if not exists:
                mismatches.append(Mismatch(table.qualified, table.rows, None))
                continue
            found = int(await conn.fetchval(
                f"SELECT count(*) FROM {quote_ident(table.schema_name)}.{quote_ident(table.name)}"))
            if found != table.rows and not (table.schema_name == BOOKKEEPING_SCHEMA and table.name == "audit"):
                mismatches.append(Mismatch(table.qualified, table.rows, found))
    finally:
        await conn.close()
    return tuple(mismatches)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"

"""The backup folder: dump files, the manifest JSON beside each, and finding a backup by name safely.

A backup is ``<name>.dump`` (pg_dump custom format) plus ``<name>.dump.json``. Both are written under a
temporary name and renamed when complete, so a crash leaves a ``.partial`` file, never a dump that looks
finished. A dump without a manifest is listed but flagged: nothing proves it is complete.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import BackupError

log = structlog.get_logger(__name__)

# A backup holds every row of the database: only pgbot's own OS user may list or read it.
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600

DUMP_SUFFIX = ".dump"
MANIFEST_SUFFIX = ".dump.json"
PARTIAL_SUFFIX = ".partial"
MANIFEST_FORMAT = 1
_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,200}\.dump$")


class TableCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_name: str = Field(alias="schema")
    name: str
    rows: int

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.name}"


class Manifest(BaseModel):
    """What a backup contains, as recorded when it was made (``<file>.json`` beside the dump)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    format: int = MANIFEST_FORMAT
    file: str
    database: str  # the name in pgbot's config
    dbname: str  # the database's real name on the server
    created_at: dt.datetime
    size_bytes: int
    sha256: str
    server_version: str
    server_version_num: int
    pg_dump_version: str
    encoding: str = ""
    collate: str = ""
    ctype: str = ""
    requested_by: str = ""
    duration_s: float = 0.0
    tables: list[TableCount] = Field(default_factory=list)

    @property
    def server_major(self) -> int:
        return self.server_version_num // 10000

    @property
    def pg_dump_major(self) -> int:
        return int(self.pg_dump_version.split(".")[0])

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".json")


def new_dump_name(database: str, now: dt.datetime) -> str:
    """``shop-20260501T120000Z-a1b2.dump``: sorts by time, never collides with a concurrent backup."""
    return f"{database}-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}{DUMP_SUFFIX}"


def ensure_folder(folder: Path) -> Path:
    """Create the backup folder if missing and prove a file can be written there; a clear refusal otherwise."""
    folder = folder.expanduser()
    try:
        folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    except FileExistsError:
        raise BackupError(f"The backup folder {folder} cannot be used: it exists but is not a folder "
                          "(check [backups] dir).") from None
    except OSError as exc:
        raise BackupError(f"The backup folder {folder} cannot be created: {_why(exc)} "
                          "(check [backups] dir).") from exc
    probe = folder / f".pgbot-write-test-{secrets.token_hex(4)}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BackupError(f"The backup folder {folder} is not writable: {_why(exc)} "
                          "(check [backups] dir and its permissions).") from exc
    _make_private(folder)
    return folder


def _make_private(folder: Path) -> None:
    """Close a folder others may enter (an existing one, or mkdir under a lax umask) to 0700; one pgbot does
    not own stays as it is, with a warning (its dumps are 0600 all the same)."""
    try:
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            folder.chmod(PRIVATE_FOLDER)
    except OSError as exc:
        log.warning("backup_folder_not_private", folder=str(folder), error=_why(exc))


def create_private(path: Path) -> None:
    """An empty file only pgbot's user can read, for pg_dump to write into (it keeps the mode it finds)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.close(fd)
    path.chmod(PRIVATE_FILE)  # O_CREAT's mode is only used for a new file


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    return exc.strerror or str(exc)


def write_manifest(manifest: Manifest, dump: Path) -> Path:
    """Write the manifest under a temporary name, then rename: a manifest on disk is always complete."""
    target = manifest_path(dump)
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    create_private(partial)
    partial.write_text(manifest.model_dump_json(indent=2, by_alias=True), encoding="utf-8")
    os.replace(partial, target)
    return target


def read_manifest(dump: Path) -> Manifest:
    path = manifest_path(dump)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest.model_validate(data)
    except FileNotFoundError:
        raise BackupError(f"{dump.name} has no manifest ({path.name}), so pgbot cannot prove it is complete; "
                          "refused.") from None
    except (OSError, ValueError, ValidationError) as exc:
        raise BackupError(f"The manifest of {dump.name} is unreadable or damaged ({type(exc).__name__}); "
                          "refused.") from None


def resolve_in_folder(folder: Path, name: str) -> Path:
    """A backup named in chat: only a plain file name in the backup folder, never a path elsewhere."""
    name = name.strip()
    if name.endswith(".json"):
        name = name.removesuffix(".json")
    candidate = Path(name).name
    if candidate != name or not _FILE_RE.fullmatch(candidate):
        raise BackupError(f"{name[:80]!r} is not a backup file name: give the name as listed by list_backups "
                          "(like shop-20260501T120000Z-a1b2.dump), not a path.")
    path = folder.expanduser() / candidate
    if not path.is_file():
        raise BackupError(f"There is no backup named {candidate} in {folder}.")
    return path


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of the backup folder."""

    path: Path
    size_bytes: int
    modified: dt.datetime
    manifest: Manifest | None
    problem: str = ""  # why this entry is not a usable backup


def list_folder(folder: Path, *, database: str | None = None) -> list[Listed]:
    """Backups newest first; dumps without a (readable) manifest and unfinished files are flagged."""
    folder = folder.expanduser()
    if not folder.is_dir():
        return []
    entries: list[Listed] = []
    for path in folder.iterdir():
        if not path.is_file():
            continue
        stat = path.stat()
        modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
        if path.name.endswith(PARTIAL_SUFFIX):
            entries.append(Listed(path, stat.st_size, modified, None,
                                  "unfinished (an interrupted backup; safe to delete)"))
            continue
        if not path.name.endswith(DUMP_SUFFIX):
            continue
        manifest: Manifest | None = None
        problem = ""
        try:
            manifest = read_manifest(path)
        except BackupError as exc:
            problem = ("no manifest: not made by pgbot or not finished; cannot be verified"
                       if "no manifest" in exc.user_message else "manifest unreadable")
        if database is not None and not _belongs(path, manifest, database):
            continue
        created = manifest.created_at if manifest is not None else modified
        entries.append(Listed(path, stat.st_size, created, manifest, problem))
    return sorted(entries, key=lambda e: e.modified, reverse=True)


def _belongs(path: Path, manifest: Manifest | None, database: str) -> bool:
    """By the manifest; a dump without one by its name (``shop-…``), so it is still flagged in the list."""
    if manifest is not None:
        return manifest.database == database
    return path.name.startswith(database + "-")


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def human_age(then: dt.datetime, now: dt.datetime) -> str:
    seconds = max((now - then).total_seconds(), 0)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f} {unit} ago"
    return "just now"

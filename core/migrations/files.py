"""The migrations folder: ``NNNN_<slug>.up.sql`` / ``NNNN_<slug>.down.sql``, ordered by number.

Migrations drafted in chat are written to ``<dir>/.proposed/<action id>/`` first: there they are visible for
review but ``pgbot migrate up`` never applies them, so a rejected or expired proposal cannot slip into a
deploy. Approval moves the pair into the folder itself (renumbered if its number was taken meanwhile).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import structlog

from core.config import DatabaseSettings
from core.errors import ConfigError, MigrationFileError

log = structlog.get_logger(__name__)
NO_TRANSACTION_MARK = "-- pgbot: no-transaction"
PROPOSED_DIR = ".proposed"
_FILE_RE = re.compile(r"^(\d{1,9})_([a-z0-9][a-z0-9_]{0,62})\.(up|down)\.sql$")
_MARK_RE = re.compile(r"^\s*--\s*pgbot:\s*no-transaction\b", re.IGNORECASE | re.MULTILINE)
_STOP_WORDS = {"a", "an", "the", "to", "of", "on", "in", "for", "and", "please", "column", "table", "new"}


@dataclass(frozen=True, slots=True)
class MigrationFile:
    """One migration on disk; ``checksum`` covers both files, so editing either one is noticed."""

    version: int
    name: str
    up_path: Path
    down_path: Path | None
    up_sql: str
    down_sql: str | None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    @property
    def checksum(self) -> str:
        return checksum(self.up_sql, self.down_sql)


@dataclass(frozen=True, slots=True)
class Folder:
    """What the folder holds: migrations by version, plus files pgbot ignores (said, never silently)."""

    path: Path
    migrations: tuple[MigrationFile, ...]
    ignored: tuple[str, ...] = ()

    def get(self, version: int) -> MigrationFile | None:
        return next((m for m in self.migrations if m.version == version), None)

    def next_version(self) -> int:
        return max((m.version for m in self.migrations), default=0) + 1


def checksum(up_sql: str, down_sql: str | None) -> str:
    """SHA-256 of the up text, a separator and the down text (absent down: empty)."""
    return hashlib.sha256(up_sql.encode() + b"\x00" + (down_sql or "").encode()).hexdigest()


def has_no_transaction_mark(sql: str) -> bool:
    return _MARK_RE.search(sql) is not None


def migrations_dir(database: str, settings: DatabaseSettings) -> Path:
    """The configured folder; not configured is a config problem the user can fix, said plainly."""
    if settings.migrations_dir is None:
        raise ConfigError(f"databases.{database}.migrations_dir is not set: add migrations_dir = "
                          f"\"./migrations/{database}\" to [databases.{database}] so pgbot knows where its "
                          "migration files live.")
    return settings.migrations_dir


def slugify(text: str) -> str:
    """"Add a nullable `discount` column to orders" → "add_nullable_discount_orders" (file-name safe)."""
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP_WORDS]
    slug = "_".join(words)[:60].strip("_")
    return slug or "migration"


def load_folder(path: Path) -> Folder:
    """Read every migration in ``path`` (a missing folder is empty); duplicate numbers are refused."""
    if not path.exists():
        return Folder(path=path, migrations=())
    if not path.is_dir():
        raise MigrationFileError(f"The migrations folder {path} is not a directory.")
    ups: dict[int, tuple[str, Path]] = {}
    downs: dict[int, tuple[str, Path]] = {}
    ignored: list[str] = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        match = _FILE_RE.match(entry.name)
        if match is None:
            if entry.suffix == ".sql":
                ignored.append(f"{entry.name} (name it NNNN_name.up.sql / NNNN_name.down.sql)")
            continue
        version, name, direction = int(match.group(1)), match.group(2), match.group(3)
        target = ups if direction == "up" else downs
        if version in target and target[version][0] != name:
            raise MigrationFileError(f"Two migrations in {path} have number {version:04d} "
                                     f"({target[version][0]} and {name}); renumber one of them.")
        target[version] = (name, entry)
    migrations = []
    for version, (name, up_path) in sorted(ups.items()):
        down = downs.get(version)
        if down is not None and down[0] != name:
            raise MigrationFileError(f"Migration {version:04d} has an up file named {name} but a down file "
                                     f"named {down[0]}; give both the same name.")
        migrations.append(MigrationFile(
            version=version, name=name, up_path=up_path, down_path=down[1] if down else None,
            up_sql=_read(up_path), down_sql=_read(down[1]) if down else None,
        ))
    ignored += [f"{d[1].name} (a down file without its up file)" for v, d in downs.items() if v not in ups]
    return Folder(path=path, migrations=tuple(migrations), ignored=tuple(ignored))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationFileError(f"Cannot read migration file {path}: {exc}") from exc


# --- drafts proposed in chat -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    action_id: str
    version: int
    name: str
    up_path: Path
    down_path: Path
    created_at: float


def draft_dir(folder: Path, action_id: str) -> Path:
    return folder / PROPOSED_DIR / action_id


def write_draft(folder: Path, *, action_id: str, version: int, name: str, up_sql: str, down_sql: str) -> Draft:
    """Write the proposed pair where review can see it and ``migrate up`` cannot apply it."""
    target = draft_dir(folder, action_id)
    label = f"{version:04d}_{name}"
    try:
        target.mkdir(parents=True, exist_ok=False)
        up_path, down_path = target / f"{label}.up.sql", target / f"{label}.down.sql"
        up_path.write_text(up_sql, encoding="utf-8")
        down_path.write_text(down_sql, encoding="utf-8")
    except OSError as exc:
        raise MigrationFileError(f"Cannot write the migration files into {folder}: {exc.strerror or exc}. "
                                 "Check that the migrations folder exists and is writable.") from exc
    return Draft(action_id=action_id, version=version, name=name, up_path=up_path, down_path=down_path,
                 created_at=time.time())


def find_draft(folder: Path, action_id: str) -> Draft | None:
    target = draft_dir(folder, action_id)
    if not target.is_dir():
        return None
    ups = sorted(target.glob("*.up.sql"))
    match = _FILE_RE.match(ups[0].name) if len(ups) == 1 else None
    if match is None:
        return None
    label = f"{int(match.group(1)):04d}_{match.group(2)}"
    return Draft(action_id=action_id, version=int(match.group(1)), name=match.group(2), up_path=ups[0],
                 down_path=target / f"{label}.down.sql", created_at=target.stat().st_mtime)


def list_drafts(folder: Path) -> list[Draft]:
    root = folder / PROPOSED_DIR
    if not root.is_dir():
        return []
    drafts = [find_draft(folder, entry.name) for entry in sorted(root.iterdir()) if entry.is_dir()]
    return [d for d in drafts if d is not None]


def remove_dead_drafts(folder: Path, *, older_than_s: float, decided: Collection[str] = (),
                       now: float | None = None) -> list[str]:
    """Drafts that can never be applied (approval expired, or rejected/failed: ``decided``): remove them."""
    now = time.time() if now is None else now
    removed = []
    for draft in list_drafts(folder):
        if now - draft.created_at > older_than_s or draft.action_id in decided:
            try:
                shutil.rmtree(draft.up_path.parent)
            except OSError as exc:  # harmless (drafts never run), but say so: it will be retried next time
                log.warning("migration_draft_not_removed", draft=str(draft.up_path.parent), error=str(exc))
                continue
            removed.append(f"{draft.version:04d}_{draft.name}")
    return removed


def promote_draft(draft: Draft, *, folder: Path, version: int) -> MigrationFile:
    """Move an approved draft into the folder as ``version`` (no overwrite: a taken name is refused)."""
    label = f"{version:04d}_{draft.name}"
    up_target, down_target = folder / f"{label}.up.sql", folder / f"{label}.down.sql"
    if up_target.exists() or down_target.exists():
        raise MigrationFileError(f"{up_target.name} already exists in {folder}; nothing was applied.")
    try:
        os.replace(draft.up_path, up_target)
        os.replace(draft.down_path, down_target)
    except OSError as exc:
        raise MigrationFileError(f"Cannot move the approved migration into {folder}: {exc.strerror or exc}. "
                                 "Nothing was applied.") from exc
    try:
        draft.up_path.parent.rmdir()  # empty now
    except OSError as exc:
        log.warning("migration_draft_dir_left", draft=str(draft.up_path.parent), error=str(exc))
    up_sql, down_sql = _read(up_target), _read(down_target)
    return MigrationFile(version=version, name=draft.name, up_path=up_target, down_path=down_target,
                         up_sql=up_sql, down_sql=down_sql)


def unpromote(migration: MigrationFile, draft: Draft) -> None:
    """Put a promoted migration back where it was when applying it failed (so it is not left pending)."""
    draft.up_path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(migration.up_path, draft.up_path)
    if migration.down_path is not None:
        os.replace(migration.down_path, draft.down_path)

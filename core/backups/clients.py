"""Which ``pg_dump`` / ``pg_restore`` to run: one whose major version is at least the server's.

Candidates, in order: ``[backups] pg_bin_dir`` alone when it is set (an explicit choice is never second-
guessed); otherwise ``PATH``, Debian's ``/usr/lib/postgresql/*/bin`` and the binaries bundled with the
``pgserver`` wheel. Among those new enough, the newest wins: a newer client reads every older server and
every older archive. An older client would fail or write a dump that misses things, so it is refused.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import structlog

from core.errors import BackupError

log = structlog.get_logger(__name__)

_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_DEBIAN_ROOT = Path("/usr/lib/postgresql")
HOW_TO_GET_NEWER = ("install a newer client (Debian/Ubuntu: the postgresql-client-{major} package from "
                    "apt.postgresql.org; or pip install pgserver, which bundles PostgreSQL 16), or point "
                    "[backups] pg_bin_dir at its bin folder")


@dataclass(frozen=True, slots=True)
class Client:
    """One client program and the PostgreSQL version it belongs to."""

    path: Path
    major: int
    version: str  # e.g. "16.4"


def candidate_dirs(pg_bin_dir: Path | None) -> list[Path]:
    if pg_bin_dir is not None:
        return [pg_bin_dir.expanduser()]
    dirs: list[Path] = []
    on_path = shutil.which("pg_dump")
    if on_path:  # the real binary's folder; else (Debian's pg_wrapper symlink) the folder on PATH
        dirs += [Path(on_path).resolve().parent, Path(on_path).parent]
    if _DEBIAN_ROOT.is_dir():
        dirs += sorted((p / "bin" for p in _DEBIAN_ROOT.iterdir() if (p / "bin").is_dir()), reverse=True)
    bundled = _pgserver_bin()
    if bundled is not None:
        dirs.append(bundled)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _pgserver_bin() -> Path | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver
    except ImportError:
        return None
    module: ModuleType = pgserver
    path = Path(module.postgres_server.POSTGRES_BIN_PATH)
    return path if path.is_dir() else None


async def client_version(path: Path) -> Client | None:
    """``path --version`` parsed, or None when it does not run or does not say."""
    try:
        proc = await asyncio.create_subprocess_exec(
            str(path), "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=15)
    except (OSError, TimeoutError) as exc:
        log.warning("backup_client_unusable", path=str(path), error=str(exc)[:200])
        return None
    match = _VERSION_RE.search(out.decode(errors="replace"))
    if proc.returncode != 0 or match is None:
        log.warning("backup_client_unusable", path=str(path), returncode=proc.returncode)
        return None
    minor = match.group(2)
    return Client(path=path, major=int(match.group(1)), version=match.group(1) + (f".{minor}" if minor else ""))


async def find_clients(program: str, pg_bin_dir: Path | None) -> list[Client]:
    """Every usable ``program`` among the candidates, newest first."""
    found: list[Client] = []
    seen: set[Path] = set()
    for folder in candidate_dirs(pg_bin_dir):
        path = folder / program
        if not path.is_file() or path.resolve() in seen:
            continue
        seen.add(path.resolve())
        client = await client_version(path)
        if client is not None:
            found.append(client)
    return sorted(found, key=lambda c: c.major, reverse=True)


async def choose_client(program: str, *, pg_bin_dir: Path | None, server_major: int, reason: str = "") -> Client:
    """The newest ``program`` whose major version is at least ``server_major``; a clear refusal otherwise.

    ``reason`` says what sets the floor when it is not only the server (``"the dump was made by pg_dump 16"``)."""
    clients = await find_clients(program, pg_bin_dir)
    where = (f"[backups] pg_bin_dir ({pg_bin_dir})" if pg_bin_dir is not None
             else "PATH, /usr/lib/postgresql/*/bin or the pgserver package")
    floor = f"PostgreSQL {server_major}" + (f" ({reason})" if reason else "")
    if not clients:
        raise BackupError(f"No {program} was found in {where}. It must be version {server_major} or newer "
                          f"for {floor}: " + HOW_TO_GET_NEWER.format(major=server_major) + ".")
    newest = clients[0]
    if newest.major < server_major:
        raise BackupError(
            f"Refused: the newest {program} available is {newest.version} ({newest.path}), older than {floor}. "
            f"An older {program} cannot be trusted with a newer server or archive. To fix it, "
            + HOW_TO_GET_NEWER.format(major=server_major) + ".")
    return newest

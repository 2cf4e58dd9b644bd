"""Check a backup before trusting it: manifest, size, sha256, the custom-format header, and pg_restore --list.

A truncated or corrupted file fails here, before a restore creates or touches any database.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from core.backups.clients import Client, choose_client
from core.backups.conninfo import ClientTarget
from core.backups.create import sha256_of
from core.backups.manifest import Manifest, read_manifest
from core.backups.proc import run_client
from core.config import BackupSettings
from core.errors import BackupError

MAGIC = b"PGDMP"


@dataclass(frozen=True, slots=True)
class Verified:
    path: Path
    manifest: Manifest
    client: Client  # the pg_restore that read it
    entries: int  # table-of-contents entries pg_restore listed
    server_major: int  # of the server it was verified for (0: any)
    listing: tuple[str, ...]  # the entry lines, for restores that leave some out


async def verify_backup(path: Path, *, settings: BackupSettings, server_major: int = 0) -> Verified:
    """Raise :class:`BackupError` saying what is wrong, else describe the intact backup.

    ``server_major``: the server a restore will write to (its pg_restore must be at least that new)."""
    manifest = await asyncio.to_thread(check_file, path)
    floor = max(server_major, manifest.pg_dump_major)
    reason = f"the dump was made by pg_dump {manifest.pg_dump_version}" if floor == manifest.pg_dump_major else ""
    client = await choose_client("pg_restore", pg_bin_dir=settings.pg_bin_dir, server_major=floor, reason=reason)
    result = await run_client(client, ["--list", str(path)], target=ClientTarget(uri="", env=dict(os.environ)),
                              timeout_s=settings.timeout_s, what="pg_restore --list")
    if result.returncode != 0:
        text = " / ".join(result.errors[-3:]) or f"exit status {result.returncode}"
        raise BackupError(f"pg_restore cannot read {path.name} ({text}); refused.")
    listing = tuple(line for line in result.stdout.splitlines() if line and not line.startswith(";"))
    return Verified(path=path, manifest=manifest, client=client, entries=len(listing), listing=listing,
                    server_major=server_major)


def check_file(path: Path) -> Manifest:
    """The file-level checks (blocking reads, run in a thread): manifest, header, size, sha256."""
    if not path.is_file():
        raise BackupError(f"There is no backup file {path}.")
    manifest = read_manifest(path)
    if manifest.file != path.name:
        raise BackupError(f"The manifest beside {path.name} describes {manifest.file}; refused.")
    with path.open("rb") as handle:
        head = handle.read(len(MAGIC))
    if head != MAGIC:
        raise BackupError(f"{path.name} is not a pg_dump custom-format file (no PGDMP header); refused.")
    size = path.stat().st_size
    if size != manifest.size_bytes:
        raise BackupError(f"{path.name} is {size:,} bytes but was {manifest.size_bytes:,} when it was made: "
                          "the file is truncated or was changed; refused.")
    digest = sha256_of(path)
    if digest != manifest.sha256:
        raise BackupError(f"{path.name} does not match the checksum in its manifest (sha256 {digest[:12]}… "
                          f"instead of {manifest.sha256[:12]}…): the file is corrupted; refused.")
    return manifest

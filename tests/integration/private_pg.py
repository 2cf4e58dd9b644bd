"""A private PostgreSQL with server settings the shared one lacks (shared_preload_libraries), from the system
binaries, in a temp dir on a free port; stopped and deleted afterwards. Skips with the reason when impossible."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.services import _free_port

BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def _as_server_user(command: Sequence[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the system's postgres user then."""
    if os.geteuid() != 0:
        return list(command)
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser: cannot start a private PostgreSQL")
    return [runuser, "-u", "postgres", "--", *command]


@contextmanager
def private_postgres(*settings: str) -> Iterator[str]:
    """Yield an admin DSN of a fresh server started with ``-c`` ``settings``."""
    bin_dir = next((Path(d) for d in BIN_DIRS if (Path(d) / "pg_ctl").exists()), None)
    if bin_dir is None:
        pytest.skip(f"no PostgreSQL server binaries in {', '.join(BIN_DIRS)}")
    root = Path(tempfile.mkdtemp(prefix="pgbot-private-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    port = _free_port()
    options = " ".join([f"-p {port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={root}",
                        "-c fsync=off", *(f"-c {s}" for s in settings)])
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        init = subprocess.run(_as_server_user(initdb), capture_output=True, timeout=60)
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {init.stderr.decode()[-300:]}")
        start = subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                                                "-l", str(root / "log"), "start"]), capture_output=True, timeout=60)
        if start.returncode != 0:
            pytest.skip(f"the private server did not start: {start.stderr.decode()[-300:]}")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)

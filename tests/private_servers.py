"""Throwaway PostgreSQL and Redis servers that a fault test may stop and restart (never the shared ones).

PostgreSQL comes from the system binaries (``/usr/lib/postgresql/<v>/bin``: initdb + pg_ctl on a temp dir
and a free port, as the ``postgres`` user when the tests run as root); Redis from ``redis-server`` with an
append-only file in a temp dir, so a restart keeps its data like a production Redis with persistence.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.services import free_port


def _postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


@dataclass
class PrivatePostgres:
    bin_dir: Path
    data_dir: Path
    port: int
    as_user: list[str]
    settings: tuple[str, ...] = ()  # extra ``-c name=value`` server settings (shared_preload_libraries, ...)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = " ".join([f"-p {self.port} -k {self.data_dir.parent} -c listen_addresses=127.0.0.1 -c fsync=off",
                            *(f"-c {setting}" for setting in self.settings)])
        self.pg_ctl("-l", str(self.data_dir.parent / "log"), "-o", options, "-w", "start")

    def restart(self) -> None:
        """A fast restart: backends are terminated mid-query, as in a failover or a server restart."""
        self.pg_ctl("-m", "fast", "-w", "stop")
        self.start()


@contextmanager
def private_postgres(*settings: str) -> Iterator[PrivatePostgres]:
    """A fresh server from the system binaries, started with the ``-c`` ``settings`` given."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin to start a private server")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run a private PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="pgbot-fault-pg-"))
    if as_user:
        shutil.chown(base, user="postgres")
    server = PrivatePostgres(bin_dir=bin_dir, data_dir=base / "data", port=free_port(), as_user=as_user,
                             settings=settings)
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(server.data_dir), "-A", "trust", "-U",
                        "postgres", "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):  # never started, or already stopped
            server.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            self.proc.wait(timeout=10)
            self.proc = None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed, so no private Redis can be restarted")
    directory = Path(tempfile.mkdtemp(prefix="pgbot-fault-redis-"))
    server = PrivateRedis(port=free_port(), directory=directory)
    try:
        server.start()
        yield server
    finally:
        if server.proc is not None:
            server.proc.kill()
            server.proc.wait()
        shutil.rmtree(directory, ignore_errors=True)

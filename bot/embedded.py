"""A local PostgreSQL 16 for ``pgbot demo`` on a machine with nothing set up, from the ``pgserver`` wheel.

The server listens on a Unix socket only (no TCP port to clash with), in a data directory reused across
runs: the first start runs initdb, later ones start the existing cluster, and a server already running on
that directory is reused as is. ``stop()`` stops only a server this process started, so a second
``pgbot demo`` never pulls the database from under the first. Under root, pgserver runs Postgres as a
``pgserver`` system user it creates, and opens read+traverse permission on the data directory's parents.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import asyncpg
import structlog

from core.errors import DatabaseUnavailableError

__all__ = ["DEMO_DATABASE", "EmbeddedPostgres", "default_data_dir", "start_embedded_postgres"]

DEMO_DATABASE = "pgbot_demo"
_SUPERUSER = "postgres"  # pgserver's initdb -U
_log = structlog.get_logger(__name__)


ROOT_DATA_DIR = Path("/var/lib/pgbot/embedded")


def default_data_dir() -> Path:
    """``~/.pgbot/embedded``: one cluster per user, reused by every ``pgbot demo``.

    Under root, ``/var/lib/pgbot/embedded`` instead: pgserver then runs Postgres as another user and opens
    read+traverse permission on every parent of the data directory, which must not include root's home."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ROOT_DATA_DIR
    return Path.home() / ".pgbot" / "embedded"


@dataclass(frozen=True)
class _Running:
    host: str  # the socket directory (Linux, macOS) or a TCP address (Windows)
    port: int
    system_user: str | None
    started_here: bool


class EmbeddedPostgres:
    """Handle on the embedded server: where to connect, where the client binaries live, how to stop."""

    def __init__(self, *, data_dir: Path, bin_dir: Path, running: _Running, pgserver: ModuleType) -> None:
        self.data_dir = data_dir
        self.bin_dir = bin_dir
        self.started_here = running.started_here
        self._running = running
        self._pgserver = pgserver
        self._stopped = False

    def dsn_for(self, database: str) -> str:
        """A libpq/asyncpg URI, over the socket: ``postgresql://postgres@/db?host=/socket/dir&port=5432``."""
        host, port, db = self._running.host, self._running.port, quote(database)
        if host.startswith("/"):
            return f"postgresql://{_SUPERUSER}@/{db}?host={quote(host, safe='/')}&port={port}"
        return f"postgresql://{_SUPERUSER}@{host}:{port}/{db}"

    @property
    def dsn(self) -> str:
        """The demo database's URI (``pgbot_demo``)."""
        return self.dsn_for(DEMO_DATABASE)

    async def stop(self) -> None:
        """Stop the server if this process started it and no other client is connected.

        Close your own connections first: any open session (yours or another ``pgbot demo`` that reused
        this server) keeps the server running, and the next start simply reuses it.
        """
        if self._stopped or not self.started_here:
            self._stopped = True
            return
        self._stopped = True
        others = await self._other_sessions()
        if others:
            _log.info("embedded_postgres.left_running", data_dir=str(self.data_dir), sessions=others)
            return
        if not await asyncio.to_thread(_is_running, self._pgserver, self.data_dir):
            return  # stopped by someone else already: the outcome the caller wants
        try:
            await asyncio.to_thread(
                self._pgserver.pg_ctl,
                ["-w", "-m", "fast", "stop"],
                pgdata=self.data_dir,
                user=self._running.system_user,
                timeout=30,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            raise DatabaseUnavailableError(f"Embedded Postgres did not stop cleanly; see {self._log_path}.") from exc
        _log.info("embedded_postgres.stopped", data_dir=str(self.data_dir))

    async def _other_sessions(self) -> int:
        try:
            conn = await asyncpg.connect(self.dsn_for("postgres"), timeout=15)
        except TimeoutError:
            # Slow (a busy machine), not gone: someone may be using it, so it is left running.
            _log.warning("embedded_postgres.busy", data_dir=str(self.data_dir))
            return 1
        except (OSError, asyncpg.PostgresError):
            return 0  # refused or gone: nobody can be using it, stopping is right
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return count

    @property
    def _log_path(self) -> Path:
        return self.data_dir / "log"


async def start_embedded_postgres(data_dir: Path | None = None) -> EmbeddedPostgres:
    """Start (or reuse) the embedded server on ``data_dir`` and make sure ``pgbot_demo`` exists in it."""
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    pgserver = _import_pgserver()
    bin_dir = Path(pgserver.postgres_server.POSTGRES_BIN_PATH)
    began = time.perf_counter()
    running = await asyncio.to_thread(_start_blocking, pgserver, data_dir)
    server = EmbeddedPostgres(data_dir=data_dir, bin_dir=bin_dir, running=running, pgserver=pgserver)
    try:
        await _ensure_database(server)
    except BaseException:
        await server.stop()
        raise
    _log.info(
        "embedded_postgres.ready",
        data_dir=str(data_dir),
        started_here=running.started_here,
        seconds=round(time.perf_counter() - began, 3),
    )
    return server


def _import_pgserver() -> ModuleType:
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers); harmless here.
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise DatabaseUnavailableError(
            "The embedded Postgres needs the pgserver package: pip install 'pgbot[embedded]'"
        ) from exc
    return pgserver


def _is_running(pgserver: ModuleType, data_dir: Path) -> bool:
    info = pgserver.postgres_server.PostmasterInfo.read_from_pgdata(data_dir)
    return info is not None and bool(info.is_running())


def _start_blocking(pgserver: ModuleType, data_dir: Path) -> _Running:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        already_running = _is_running(pgserver, data_dir)
        # The constructor, unlike get_server(), never returns a cached handle to a server stopped since;
        # cleanup_mode=None: our stop() decides, not pgserver's atexit hook.
        server = pgserver.PostgresServer(data_dir, cleanup_mode=None)
        info = server.get_postmaster_info()
    except Exception as exc:  # pgserver raises assorted types: asserts, psutil, subprocess errors
        raise DatabaseUnavailableError(
            f"Embedded Postgres failed to start in {data_dir}; see {data_dir / 'log'}."
        ) from exc
    host = str(info.socket_dir) if info.socket_dir is not None else info.hostname
    if host is None or info.port is None:
        raise DatabaseUnavailableError(f"Embedded Postgres in {data_dir} reports no address to connect to.")
    return _Running(
        host=host,
        port=int(info.port),
        system_user=server.system_user,
        started_here=not already_running,
    )


async def _ensure_database(server: EmbeddedPostgres) -> None:
    try:
        conn = await asyncpg.connect(server.dsn_for("postgres"), timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnavailableError(
            f"Embedded Postgres started but refused a connection; see {server.data_dir / 'log'}."
        ) from exc
    try:
        exists = await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", DEMO_DATABASE)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
            except asyncpg.DuplicateDatabaseError:
                # another pgbot created it between our check and our CREATE: same outcome
                _log.debug("embedded_postgres.database_created_concurrently", database=DEMO_DATABASE)
    finally:
        await conn.close()

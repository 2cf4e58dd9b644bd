"""The embedded PostgreSQL from the pgserver wheel: start, connect, load the demo, reuse, stop, fail clearly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bot.demo import load_demo
from bot.embedded import DEMO_DATABASE, EmbeddedPostgres, default_data_dir, start_embedded_postgres
from core.errors import DatabaseUnavailableError


def _postmaster_running(data_dir: Path) -> bool:
    return (data_dir / "postmaster.pid").exists()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh cluster directory; whatever a test leaves running there is stopped afterwards."""
    path = tmp_path / "embedded"
    yield path
    if _postmaster_running(path):
        import pgserver

        subprocess.run(
            [
                str(Path(pgserver.postgres_server.POSTGRES_BIN_PATH) / "pg_ctl"),
                "-D",
                str(path),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            check=False,
            user="pgserver" if os.geteuid() == 0 else None,  # pgserver runs Postgres as this user under root
            capture_output=True,
        )


async def test_start_connect_load_reuse_stop_restart(data_dir: Path) -> None:
    began = time.perf_counter()
    server = await start_embedded_postgres(data_dir)
    first_start = time.perf_counter() - began
    try:
        assert server.started_here
        assert server.dsn.startswith(f"postgresql://postgres@/{DEMO_DATABASE}?host=/")
        assert (server.bin_dir / "pg_dump").is_file() and (server.bin_dir / "pg_restore").is_file()
        conn = await asyncpg.connect(server.dsn)
        try:
            assert (await conn.fetchval("SHOW server_version_num")).startswith("16")
            await load_demo(conn)
            assert await conn.fetchval("SELECT count(*) FROM orders WHERE status = 'delivered'") > 1000
        finally:
            await conn.close()

        # a second start on a running server reuses it, and its stop() leaves the server up
        began = time.perf_counter()
        again = await start_embedded_postgres(data_dir)
        assert time.perf_counter() - began < 2.0
        assert not again.started_here and again.dsn == server.dsn
        await again.stop()
        assert _postmaster_running(data_dir)
    finally:
        await server.stop()
    assert not _postmaster_running(data_dir)

    # restarting the stopped cluster is quick and keeps the data (today's demo load stays a no-op)
    began = time.perf_counter()
    server = await start_embedded_postgres(data_dir)
    restart = time.perf_counter() - began
    try:
        assert server.started_here
        conn = await asyncpg.connect(server.dsn)
        try:
            await load_demo(conn)
            assert await conn.fetchval("SELECT count(*) FROM customers") == 200
        finally:
            await conn.close()
    finally:
        await server.stop()
    assert not _postmaster_running(data_dir)
    assert first_start < 15.0 and restart < 5.0, (first_start, restart)


async def test_stop_leaves_the_server_up_while_someone_is_connected(data_dir: Path) -> None:
    server = await start_embedded_postgres(data_dir)
    conn = await asyncpg.connect(server.dsn)
    try:
        await server.stop()
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    fresh: EmbeddedPostgres = await start_embedded_postgres(data_dir)
    assert not fresh.started_here  # still running from before; the fixture stops it


@pytest.fixture
def broken_data_dir(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True)
    (data_dir / "PG_VERSION").write_text("9\n")  # a cluster from a Postgres this server cannot run
    return data_dir


async def test_a_broken_data_dir_fails_with_one_clear_line(broken_data_dir: Path) -> None:
    data_dir = broken_data_dir
    with pytest.raises(DatabaseUnavailableError) as caught:
        await start_embedded_postgres(data_dir)
    message = caught.value.user_message
    assert "failed to start" in message and str(data_dir) in message and "\n" not in message


async def test_missing_pgserver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)  # what Python sees when the wheel is not installed
    with pytest.raises(DatabaseUnavailableError) as caught:
        await start_embedded_postgres(tmp_path / "never-created")
    assert caught.value.user_message.endswith("pip install 'pgbot[embedded]'")
    assert not (tmp_path / "never-created").exists()


def test_default_data_dir_is_per_user_and_outside_roots_home_under_root() -> None:
    import os

    if os.geteuid() == 0:  # pgserver would open traverse permission on every parent: not /root
        assert default_data_dir() == Path("/var/lib/pgbot/embedded")
    else:
        assert default_data_dir() == Path.home() / ".pgbot" / "embedded"

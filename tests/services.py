"""Find or start the real services tests need: PostgreSQL and Redis.

PostgreSQL: ``PGBOT_TEST_DSN``, else postgresql://postgres@127.0.0.1:5432/postgres, else a throwaway server
from the ``pgserver`` wheel. Redis: ``PGBOT_REDIS_URL``, else redis://127.0.0.1:6379/0, else a throwaway
``redis-server`` on a free port. Nothing is skipped silently: if neither works, the fixture fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import redis
import redis.asyncio as aioredis
from aiohttp import web

from bot.wiring import REDIS_TIMEOUT_S, SharedRedis

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


async def _pg_answers(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def find_or_start_postgres() -> tuple[str, object | None]:
    """Return an admin DSN and, when we started one, the server object to stop later."""
    explicit = os.environ.get("PGBOT_TEST_DSN")
    if explicit:
        return explicit, None
    if asyncio.run(_pg_answers(DEFAULT_PG_DSN)):
        return DEFAULT_PG_DSN, None
    import pgserver  # the wheel ships PostgreSQL 16 binaries

    data_dir = Path(tempfile.mkdtemp(prefix="pgbot-test-pg-"))
    server = pgserver.get_server(data_dir, cleanup_mode="delete")
    return server.get_uri(), server


def free_port() -> int:
    """A TCP port nothing listens on right now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_or_start_redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    explicit = os.environ.get("PGBOT_REDIS_URL")
    if explicit:
        return explicit, None
    try:
        redis.Redis.from_url(DEFAULT_REDIS_URL, socket_connect_timeout=2).ping()
        return DEFAULT_REDIS_URL, None
    except (redis.RedisError, OSError):
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("No Redis: set PGBOT_REDIS_URL, run one on 127.0.0.1:6379, or install redis-server")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            return url, proc
        except (redis.RedisError, OSError):
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def dsn_for_database(admin_dsn: str, database: str) -> str:
    """The admin DSN with another database name (keeps host, port, user and query options)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(admin_dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@asynccontextmanager
async def throwaway_database(admin_dsn: str, *, prefix: str, keep: bool = False) -> AsyncIterator[str]:
    """A new, empty database; dropped afterwards (also when the body fails) unless ``keep``."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield dsn_for_database(admin_dsn, name)
    finally:
        if not keep:
            admin = await asyncpg.connect(admin_dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


@asynccontextmanager
async def throwaway_role(dsn: str, admin_dsn: str, *, prefix: str, grants: str = "") -> AsyncIterator[str]:
    """A NOLOGIN role the login role may SET ROLE to, with ``grants`` (SQL; ``{role}`` is its quoted name)
    run in ``dsn``'s database; afterwards what it owns there is dropped, then the role itself."""
    role = f"{prefix}_{uuid.uuid4().hex[:8]}"
    quoted = f'"{role}"'
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE ROLE {quoted} NOLOGIN; GRANT {quoted} TO CURRENT_USER")
        if grants:
            await conn.execute(grants.format(role=quoted))
    finally:
        await conn.close()
    try:
        yield role
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP OWNED BY {quoted}")
        finally:
            await conn.close()
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f"DROP ROLE IF EXISTS {quoted}")
        finally:
            await admin.close()


async def serve_locally(runner: web.AppRunner) -> int:
    """Set up ``runner`` and serve it on 127.0.0.1, on a port the OS picks (no race with other tests); the port."""
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return int(runner.addresses[0][1])


async def delete_keys(redis_url: str, *patterns: str) -> None:
    """Remove a test's Redis keys (each ``SCAN`` pattern), never anyone else's: no FLUSHDB."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        for pattern in patterns:
            keys = [k async for k in client.scan_iter(pattern)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


def store_client(redis_url: str, *, timeout_s: float = REDIS_TIMEOUT_S) -> aioredis.Redis:
    """A client for one store as the bot builds it (bot.wiring.SharedRedis: text replies, timeouts), on a pool
    of its own; closing the store closes it."""
    return SharedRedis(redis_url, timeout_s=timeout_s).client()

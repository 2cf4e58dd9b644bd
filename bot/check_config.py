"""``pgbot check-config``: validate the file, then try every database, Redis and the LLM endpoint.

Each problem is one line naming the file and the key; nothing secret is printed.
"""

from __future__ import annotations

import asyncio
import sys

from core.config import Settings, load_settings, resolve_config_path
from core.db.postgres import PgDatabase
from core.errors import ConfigError, PgbotError


async def check_config(*, config: str | None) -> int:
    path = resolve_config_path(config)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"FAIL {line}", file=sys.stderr)
        return 2
    if settings.llm.disabled_tools:
        from core.tools.registry import load_tools

        try:
            load_tools().without(settings.llm.disabled_tools)
        except ConfigError as exc:
            for line in exc.problems:
                print(f"FAIL {path}: {line}", file=sys.stderr)
            return 2
    results = await asyncio.gather(
        *(_check_database(name, settings) for name in settings.databases),
        _check_redis(settings),
        _check_llm(settings),
    )
    problems = [line for group in results for line in group if line.startswith("FAIL")]
    for group in results:
        for line in group:
            print(f"{line.replace('{path}', str(path))}", file=sys.stderr if line.startswith("FAIL") else sys.stdout)
    if not settings.databases:
        print(f"WARN {path}: databases: no database is configured (pgbot demo uses an embedded one)")
    print(f"{'OK' if not problems else 'FAILED'}: {len(problems)} problem(s) in {path}")
    return 0 if not problems else 1


async def _check_database(name: str, settings: Settings) -> list[str]:
    db = PgDatabase(name, settings.databases[name])
    try:
        facts = await asyncio.wait_for(_version(db), timeout=settings.databases[name].connect_timeout_s + 2)
    except PgbotError as exc:
        return [f"FAIL {{path}}: databases.{name}.dsn: {exc.user_message}"]
    except TimeoutError:
        return [f"FAIL {{path}}: databases.{name}.dsn: connection timed out"]
    finally:
        await db.aclose()
    lines = [f"ok   databases.{name}: PostgreSQL {facts}"]
    for identity, role in (settings.databases[name].roles or {}).items():
        lines.append(f"ok   databases.{name}.roles: {identity} → {role}")
    return lines


async def _version(db: PgDatabase) -> str:
    result = await db.fetch("SELECT current_setting('server_version')", role=None)
    return str(result.rows[0][0])


async def _check_redis(settings: Settings) -> list[str]:
    if settings.redis.url is None:
        return ["ok   redis: not configured (context kept in memory: terminal only)"]
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(settings.redis.url.get_secret_value(), socket_connect_timeout=3)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return [f"FAIL {{path}}: redis.url: cannot connect ({type(exc).__name__})"]
    finally:
        await client.aclose()
    return ["ok   redis: reachable"]


async def _check_llm(settings: Settings) -> list[str]:
    from bot.wiring import make_llm

    llm = make_llm(settings)
    if llm is None:
        return ["WARN {path}: llm: no api_key or base_url (set OPENAI_API_KEY or llm.base_url); slash commands only"]
    try:
        ping = getattr(llm, "ping", None)
        if ping is not None:
            await ping()
    except PgbotError as exc:
        return [f"FAIL {{path}}: llm: {exc.user_message}"]
    finally:
        await llm.aclose()
    return [f"ok   llm: {settings.llm.model} at {settings.llm.base_url or 'OpenAI'}"]

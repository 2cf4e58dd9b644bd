"""``pgbot check-config``: validate the file, then try every database, Redis and the LLM endpoint, and name
every unsafe setting.

Each problem is one line naming the file and the key; nothing secret is printed. ``UNSAFE`` lines name
settings that let someone do more than intended (issue 13): a superuser or over-privileged login (asked of the
database itself), no roles table where chat users reach the bot, self-approval, ``"*"`` mapped to a role that
writes. ``WARN`` lines are advice. With ``--strict`` an unsafe setting fails the check (exit 1).
"""

from __future__ import annotations

import asyncio
import sys

from core.config import DatabaseSettings, Settings, load_settings, resolve_config_path
from core.db.postgres import PgDatabase
from core.diagnostics.login_check import check_login
from core.errors import ConfigError, PgbotError
from core.sqlguard import CheckedSql


async def check_config(*, config: str | None, strict: bool = False) -> int:
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
    results.append(unsafe_settings(settings))
    problems = [line for group in results for line in group if line.startswith("FAIL")]
    unsafe = [line for group in results for line in group if line.startswith("UNSAFE")]
    for group in results:
        for line in group:
            print(f"{line.replace('{path}', str(path))}", file=sys.stderr if line.startswith("FAIL") else sys.stdout)
    if not settings.databases:
        print(f"WARN {path}: databases: no database is configured (pgbot demo uses an embedded one)")
    failed = bool(problems) or (strict and bool(unsafe))
    print(f"{'FAILED' if failed else 'OK'}: {len(problems)} problem(s), {len(unsafe)} unsafe setting(s) in {path}")
    return 1 if failed else 0


def chat_platforms(settings: Settings) -> list[str]:
    """The chat platforms this config serves: a [slack] or [discord] token is set (an empty ${VAR} counts)."""
    return [name for name, token in (("Slack", settings.slack.bot_token), ("Discord", settings.discord.token))
            if token is not None]


def unsafe_settings(settings: Settings) -> list[str]:
    """What the file alone shows: chat users without a roles table, self-approval, no approvers."""
    chat = chat_platforms(settings)
    lines: list[str] = []
    for name, db in settings.databases.items():
        key = f"databases.{name}"
        if chat and db.roles is None:
            lines.append(f"UNSAFE {{path}}: {key}.roles: no roles table, so every {' and '.join(chat)} user runs "
                         "statements as the login role; map people to database roles")
        if db.approvers.allow_self_approval:
            lines.append(f"UNSAFE {{path}}: {key}.approvers.allow_self_approval: true lets one person change the "
                         "database alone; set it to false")
        if chat and not (db.approvers.users or db.approvers.roles):
            lines.append(f"WARN {{path}}: {key}.approvers: none configured, so nobody can approve changes from "
                         f"chat; name them: [{key}.approvers] roles = [...] / users = [...]")
    return lines


async def _check_database(name: str, settings: Settings) -> list[str]:
    db = PgDatabase(name, settings.databases[name])
    try:
        timeout = settings.databases[name].connect_timeout_s + 2
        facts = await asyncio.wait_for(_version(db), timeout=timeout)
        safety = await asyncio.wait_for(_login_safety(db, name, settings), timeout=timeout)
    except PgbotError as exc:
        return [f"FAIL {{path}}: databases.{name}.dsn: {exc.user_message}"]
    except TimeoutError:
        return [f"FAIL {{path}}: databases.{name}.dsn: connection timed out"]
    finally:
        await db.aclose()
    lines = [f"ok   databases.{name}: PostgreSQL {facts}", *safety]
    for identity, role in (settings.databases[name].roles or {}).items():
        lines.append(f"ok   databases.{name}.roles: {identity} → {role}")
    return lines


async def _login_safety(db: PgDatabase, name: str, settings: Settings) -> list[str]:
    """Ask the database what its login role can do beyond the mapped roles (core.diagnostics.login_check)."""
    config: DatabaseSettings = settings.databases[name]
    roles = config.roles or {}
    everyone = roles.get("*")
    report = await check_login(db, mapped=roles.values(), writes_asked=[everyone] if everyone else [])
    lines = [f"UNSAFE {{path}}: databases.{name}.dsn: {problem}" for problem in report.problems()]
    if report.writing_roles:
        lines.append(f'UNSAFE {{path}}: databases.{name}.roles: "*" maps everyone to {report.writing_roles[0]}, '
                     "which can change data or schema; map \"*\" to a read-only role (or none)")
    return lines


SERVER_VERSION_SQL = CheckedSql.trusted("SELECT current_setting('server_version')")


async def _version(db: PgDatabase) -> str:
    result = await db.fetch(SERVER_VERSION_SQL, role=None)
    return str(result.rows[0][0])


async def _check_redis(settings: Settings) -> list[str]:
    """Ping Redis over the pool the bot itself would use (bot.wiring.SharedRedis: same URL, timeouts, decoding)."""
    from redis.exceptions import RedisError

    from bot.wiring import shared_redis

    shared = shared_redis(settings)
    if shared is None:
        return ["ok   redis: not configured (context kept in memory: terminal only)"]
    client = shared.client()
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

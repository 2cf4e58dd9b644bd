"""The server facts behind every prompt: one query per database per TTL, the clock computed locally."""

from __future__ import annotations

import datetime as dt

import asyncpg

from core.config import DatabaseSettings
from core.db.postgres import PgDatabase
from core.db.server_facts import ServerFacts


async def test_facts_are_cached_and_the_clock_follows_the_server_zone(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:  # a POSIX-style zone Python's zoneinfo cannot name: the server's offset is used instead
        await conn.execute(f"ALTER DATABASE \"{fresh_db.rsplit('/', 1)[1]}\" SET timezone = '<+03>-03'")
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    db = PgDatabase("shop", DatabaseSettings(dsn=fresh_db))
    facts = ServerFacts(ttl_s=60)
    try:
        first = await facts.get(db)
        again = await facts.get(db)
        assert facts.queries == 1 and again is first
        assert first.version == version and first.tz == "<+03>-03"
        now = first.now()
        assert now.utcoffset() == dt.timedelta(hours=3)
        assert abs((now - dt.datetime.now(dt.UTC)).total_seconds()) < 5
        assert first.now_text().endswith("+03:00") and "." not in first.now_text()  # to the second
        expired = ServerFacts(ttl_s=0)
        await expired.get(db)
        await expired.get(db)
        assert expired.queries == 2
    finally:
        await db.aclose()

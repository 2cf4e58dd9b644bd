"""The database server's version, time zone and clock, fetched once a minute per database, not per turn.

The prompt needs them on every question (dialect, relative dates), but they hardly change: one query per
database per ``ttl_s`` keeps a round trip off every turn, and the clock is computed locally from the
offset between the server's clock and this process's, shown in the server's time zone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from core.db.base import Connection, Database

DEFAULT_TTL_S = 60.0
_QUERY = (
    "SELECT current_setting('server_version') AS version, current_setting('TimeZone') AS tz, "
    "clock_timestamp() AS now, EXTRACT(timezone FROM clock_timestamp())::int AS utc_offset_s"
)


@dataclass(frozen=True, slots=True)
class Facts:
    version: str
    tz: str
    skew: dt.timedelta  # the server's clock minus this process's
    zone: dt.tzinfo  # ``tz`` when Python knows it, else the server's UTC offset when fetched

    def now(self) -> dt.datetime:
        """The server's now(), to the second, in its time zone."""
        return (dt.datetime.now(dt.UTC) + self.skew).astimezone(self.zone).replace(microsecond=0)

    def now_text(self) -> str:
        return self.now().isoformat(sep=" ")


class ServerFacts:
    """Facts per database, cached for ``ttl_s``; concurrent turns on a cold cache share one query."""

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._cached: dict[str, tuple[float, Facts]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.queries = 0  # how many times the server was asked (tests and benchmarks read it)

    async def get(self, db: Database) -> Facts:
        entry = self._cached.get(db.name)
        if entry is not None and time.monotonic() - entry[0] < self._ttl_s:
            return entry[1]
        lock = self._locks.setdefault(db.name, asyncio.Lock())
        async with lock:
            entry = self._cached.get(db.name)
            if entry is not None and time.monotonic() - entry[0] < self._ttl_s:
                return entry[1]
            facts = await self._fetch(db)
            self._cached[db.name] = (time.monotonic(), facts)
            return facts

    async def _fetch(self, db: Database) -> Facts:
        async def work(conn: Connection) -> asyncpg.Record:
            return await conn.fetchrow(_QUERY)

        # The login role: none of these depend on the asking role (SET ROLE keeps the session's TimeZone).
        row = await db.run(work, role=None, read_only=True)
        self.queries += 1
        server_now: dt.datetime = row["now"]
        tz = str(row["tz"])
        try:
            zone: dt.tzinfo = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # POSIX-style zones ("<+03>-03") Python cannot name
            zone = dt.timezone(dt.timedelta(seconds=int(row["utc_offset_s"])))
        return Facts(version=str(row["version"]), tz=tz, skew=server_now - dt.datetime.now(dt.UTC), zone=zone)

"""``pgbot.schedules`` in each target database: schedules survive restarts and every replica sees them.

Like ``pgbot.audit``, the table is created on first use by the bot's login role (never a user's role), and
reading never creates it. A run is recorded with a compare-and-set on ``next_due``, so a slow duplicate can
never move a schedule back.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import LiteralString

import asyncpg

from core.db.base import Connection, Database
from core.db.owned import ensure_owned_columns, ensure_owned_table
from core.errors import DatabaseError, ScheduleError
from core.schedules.model import ChartChoice, Destination, Schedule, ScheduleKind, chart_choice

TABLE = "pgbot.schedules"
CREATE_SQL: LiteralString = """
CREATE SCHEMA IF NOT EXISTS pgbot;
CREATE TABLE IF NOT EXISTS pgbot.schedules (
    id             text PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('report', 'health')),
    cron           text NOT NULL,
    timezone       text NOT NULL,
    question       text NOT NULL,
    sql            text NOT NULL,
    platform       text NOT NULL,
    workspace      text NOT NULL,
    channel        text NOT NULL,
    thread         text NOT NULL,
    created_by     text NOT NULL,
    role           text,
    groups         text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    next_due       timestamptz NOT NULL,
    paused         boolean NOT NULL DEFAULT false,
    stopped_reason text,
    last_due       timestamptz,
    last_run_at    timestamptz,
    last_outcome   text,
    last_findings  jsonb NOT NULL DEFAULT '{}',
    chart          text CHECK (chart IN ('auto', 'line', 'bar', 'scatter'))
);
CREATE INDEX IF NOT EXISTS schedules_due_idx ON pgbot.schedules (next_due) WHERE NOT paused;
COMMENT ON TABLE pgbot.schedules IS 'pgbot: scheduled reports and health checks (pgbot schedule list).';
"""
# Columns added after the first release, for tables created before them (ADD COLUMN IF NOT EXISTS): new ones
# are nullable, so older replicas still insert and read while a newer one adds them (an older one's SELECT *,
# prepared before, fails once per pooled connection with "cached plan must not change result type"; its next
# tick reads again).
UPGRADE_SQL: LiteralString = """
ALTER TABLE pgbot.schedules ADD COLUMN IF NOT EXISTS chart text CHECK (chart IN ('auto', 'line', 'bar', 'scatter'));
"""
UPGRADE_COLUMNS = ("chart",)
_INSERT: LiteralString = (
    "INSERT INTO pgbot.schedules (id, kind, cron, timezone, question, sql, platform, workspace, channel, thread,"
    " created_by, role, groups, next_due, chart)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)


# Columns by name, never *: a column another replica adds (UPGRADE_SQL) must not change the result type of a
# statement a pooled connection already prepared ("cached plan must not change result type"). Later columns
# are read through to_jsonb, so a table an older pgbot made is read as it is, without altering it.
_SELECT: LiteralString = (
    "SELECT id, kind, cron, timezone, question, sql, platform, workspace, channel, thread, created_by, role,"
    " groups, created_at, next_due, paused, stopped_reason, last_due, last_run_at, last_outcome, last_findings,"
    " to_jsonb(s) ->> 'chart' AS chart FROM pgbot.schedules s"
)


class ScheduleStore:
    """Reads and writes ``pgbot.schedules`` as the login role."""

    def __init__(self) -> None:
        self._ready: set[str] = set()

    async def ensure(self, db: Database) -> None:
        if db.name in self._ready:
            return
        try:
            await ensure_owned_table(db, TABLE, CREATE_SQL)
            await ensure_owned_columns(db, TABLE, UPGRADE_COLUMNS, UPGRADE_SQL)
        except DatabaseError as exc:
            raise ScheduleError(
                f"pgbot cannot create its schedules table {TABLE} on '{db.name}' ({exc.user_message}). Let its "
                "login role create it (GRANT CREATE ON DATABASE ... TO <login role>) or create schema pgbot for it."
            ) from exc
        self._ready.add(db.name)

    async def insert(self, db: Database, schedule: Schedule) -> None:
        await self.ensure(db)
        d = schedule.destination
        args = (schedule.id, schedule.kind.value, schedule.cron, schedule.timezone, schedule.question, schedule.sql,
                d.platform, d.workspace, d.channel, d.thread, schedule.created_by, schedule.role,
                list(schedule.groups), schedule.next_due, schedule.chart)

        async def work(conn: Connection) -> None:
            await conn.execute(_INSERT, *args)

        await db.run(work, role=None, read_only=False)

    async def count_by(self, db: Database, created_by: str) -> int:
        async def work(conn: Connection) -> int:
            if await conn.fetchval("SELECT to_regclass('pgbot.schedules')") is None:
                return 0
            count: int = await conn.fetchval("SELECT count(*) FROM pgbot.schedules WHERE created_by = $1",
                                             created_by)
            return count

        return await db.run(work, role=None, read_only=True)

    async def select(self, db: Database, *, schedule_id: str | None = None, due_by: dt.datetime | None = None,
                     platforms: tuple[str, ...] | None = None) -> list[Schedule]:
        """Schedules of ``db`` (one by id; or the active ones due by ``due_by`` on ``platforms``); an absent
        table means none (reading never creates it)."""

        async def work(conn: Connection) -> list[asyncpg.Record]:
            if await conn.fetchval("SELECT to_regclass('pgbot.schedules')") is None:
                return []
            rows: list[asyncpg.Record] = await conn.fetch(
                _SELECT + " WHERE ($1::text IS NULL OR id = $1)"
                " AND ($2::timestamptz IS NULL OR (NOT paused AND next_due <= $2))"
                " AND ($3::text[] IS NULL OR platform = ANY($3)) ORDER BY created_at, id LIMIT 10000",
                schedule_id, due_by, list(platforms) if platforms is not None else None,
            )
            return rows

        return [_schedule(db.name, r) for r in await db.run(work, role=None, read_only=True)]

    async def set_paused(self, db: Database, schedule_id: str, *, paused: bool, reason: str | None = None,
                         next_due: dt.datetime | None = None) -> bool:
        async def work(conn: Connection) -> str:
            status: str = await conn.execute(
                "UPDATE pgbot.schedules SET paused = $2, stopped_reason = $3, next_due = coalesce($4, next_due)"
                " WHERE id = $1", schedule_id, paused, reason, next_due)
            return status

        return await db.run(work, role=None, read_only=False) == "UPDATE 1"

    async def delete(self, db: Database, schedule_id: str) -> bool:
        async def work(conn: Connection) -> str:
            status: str = await conn.execute("DELETE FROM pgbot.schedules WHERE id = $1", schedule_id)
            return status

        return await db.run(work, role=None, read_only=False) == "DELETE 1"

    async def record_run(self, db: Database, schedule_id: str, *, due: dt.datetime, next_due: dt.datetime,
                         ran_at: dt.datetime, outcome: str, findings: dict[str, dict[str, object]] | None) -> bool:
        """Move the schedule past ``due``; False when another run already did (or it was deleted)."""

        async def work(conn: Connection) -> str:
            status: str = await conn.execute(
                "UPDATE pgbot.schedules SET next_due = $3, last_due = $2, last_run_at = $4, last_outcome = $5,"
                " last_findings = coalesce($6::jsonb, last_findings) WHERE id = $1 AND next_due = $2",
                schedule_id, due, next_due, ran_at, outcome[:500],
                json.dumps(findings) if findings is not None else None)
            return status

        return await db.run(work, role=None, read_only=False) == "UPDATE 1"


def _schedule(database: str, row: asyncpg.Record) -> Schedule:
    findings = row["last_findings"]
    return Schedule(
        id=row["id"], database=database, kind=ScheduleKind(row["kind"]), cron=row["cron"], timezone=row["timezone"],
        question=row["question"], sql=row["sql"],
        destination=Destination(row["platform"], row["workspace"], row["channel"], row["thread"]),
        created_by=row["created_by"], role=row["role"], groups=tuple(row["groups"] or ()), next_due=row["next_due"],
        created_at=row["created_at"], paused=row["paused"], stopped_reason=row["stopped_reason"],
        last_due=row["last_due"], last_run_at=row["last_run_at"], last_outcome=row["last_outcome"],
        last_findings=json.loads(findings) if isinstance(findings, str) else dict(findings or {}),
        chart=_chart(row),
    )


def _chart(row: asyncpg.Record) -> ChartChoice | None:
    """None from a table an older pgbot made (no chart column until a newer one inserts), or from a value the
    CHECK would refuse (an admin's hand edit): the report then posts its table alone."""
    try:
        return chart_choice(row["chart"])
    except ScheduleError:
        return None

"""Creating, listing, pausing, resuming and deleting schedules: the rules, in one place for chat and the CLI.

Creating one is a read: it changes no user data, only pgbot's own table, so it needs no approval. A report's
SQL must pass the guard's read check and plan (EXPLAIN) as the creator's role, so a change, or a query the
role cannot run, is refused before it is stored. Pause, resume and delete: the creator, or an approver of the
schedule's database (the same rule as approving a change); the command line is the operator and may do all
three. Every step is written to ``pgbot.audit``.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import structlog

from core.approvals.audit import AuditLog
from core.config import Settings
from core.db.audit_rows import AuditEvent, AuditRecord
from core.db.base import Connection
from core.db.explain_check import explain_first
from core.db.registry import DatabaseRegistry
from core.errors import AccessDeniedError, PgbotError, ScheduleError
from core.messages import Reply, ReplyKind, ScheduleChange
from core.permissions import Actor, may_approve, resolve_role
from core.schedules.clock import Clock, SystemClock
from core.schedules.delivery import Senders
from core.schedules.model import Destination, Schedule, ScheduleKind, chart_choice, new_schedule_id
from core.schedules.store import ScheduleStore
from core.schedules.timing import next_due, parse_when, zone_named
from core.sqlguard import SqlGuard

log = structlog.get_logger(__name__)
Change = ScheduleChange
MAX_QUESTION_CHARS = 2000
_EVENTS: dict[str, AuditEvent] = {"pause": AuditEvent.SCHEDULE_PAUSED, "resume": AuditEvent.SCHEDULE_RESUMED,
                                  "delete": AuditEvent.SCHEDULE_DELETED}


class Schedules:
    """The schedules of every configured database; ``senders`` is where adapters register how to post."""

    def __init__(self, *, settings: Settings, databases: DatabaseRegistry, guard: SqlGuard,
                 audit: AuditLog | None = None, store: ScheduleStore | None = None, clock: Clock | None = None) -> None:
        self.settings = settings
        self.databases = databases
        self.guard = guard
        self.audit = audit or AuditLog(databases)
        self.store = store or ScheduleStore()
        self.clock = clock or SystemClock()
        self.senders = Senders()

    async def create(self, *, actor: Actor, destination: Destination, when: str, kind: str, question: str,
                     sql: str | None, chart: str | None = None) -> Schedule:
        """Validate and store a schedule that runs as ``actor`` on ``actor.database``; ``chart`` (reports
        only): "auto", "line", "bar" or "scatter" to post a chart of each result with its table."""
        config = self.settings.schedules
        cadence = parse_when(when, min_interval_minutes=config.min_interval_minutes)
        try:
            schedule_kind = ScheduleKind(kind)
        except ValueError:
            raise ScheduleError("A schedule is a report (a query re-run each time) or a health check.") from None
        chart_kind = chart_choice(chart)
        if chart_kind is not None and schedule_kind is not ScheduleKind.REPORT:
            raise ScheduleError("Only a report can post a chart; a health check posts its findings as text.")
        database = self.databases.get(actor.database)
        question = " ".join((question or "").split())[:MAX_QUESTION_CHARS]
        text = ""
        if schedule_kind is ScheduleKind.REPORT:
            if not sql or not sql.strip():
                raise ScheduleError("A scheduled report needs the SQL to re-run (the query that answered it).")
            # A change is refused here (GuardError), as is a function outside the read allow-list.
            checked = self.guard.check_read(sql, allowed_functions=database.settings.allowed_functions)
            await explain_first(database, role=actor.role, checked=checked)
            text = checked.sql
            question = question or text[:200]
        else:
            question = question or "database health"
        if await self.store.count_by(database, actor.identity) >= config.max_per_user:
            raise ScheduleError(f"You already have {config.max_per_user} schedules on '{database.name}' "
                                "([schedules] max_per_user); delete one first.")
        zone_name = config.timezone or await self._database_zone(actor.database)
        schedule = Schedule(
            id=new_schedule_id(), database=database.name, kind=schedule_kind, cron=cadence.cron, timezone=zone_name,
            question=question, sql=text, destination=destination, created_by=actor.identity, role=actor.role,
            groups=actor.groups, next_due=next_due(cadence.cron, zone_named(zone_name), after=self.clock.now()),
            chart=chart_kind,
        )
        await self.store.insert(database, schedule)
        await self.record(schedule, AuditEvent.SCHEDULE_CREATED, by=actor.identity, strict=True,
                          result=f"{schedule.when}; next run {schedule.next_due.isoformat()}"
                                 + (f"; chart {chart_kind}" if chart_kind else ""))
        return schedule

    async def _database_zone(self, name: str) -> str:
        """The database's TimeZone setting when it is an IANA name, else UTC (said in the schedule's time)."""

        async def work(conn: Connection) -> str:
            zone: str = await conn.fetchval("SHOW TimeZone")
            return zone

        zone = await self.databases.get(name).run(work, role=None, read_only=True)
        try:
            zone_named(zone)
        except ScheduleError:
            log.info("schedule_zone_not_iana", database=name, zone=zone[:64])
            return "UTC"
        return zone

    async def list(self, *, channel: Destination | None = None,
                   database: str | None = None) -> tuple[list[Schedule], list[str]]:
        """Schedules (posting in ``channel``'s channel, when given) and one line per database not read."""
        names = [database] if database else self.databases.names
        found: list[Schedule] = []
        problems: list[str] = []
        for name in names:
            try:
                found.extend(await self.store.select(self.databases.get(name)))
            except PgbotError as exc:
                problems.append(f"'{name}': {exc.user_message}")
        if channel is not None:
            found = [s for s in found if s.destination.same_channel(channel)]
        return found, problems

    async def find(self, schedule_id: str) -> Schedule:
        if not schedule_id or len(schedule_id) > 64 or not schedule_id.isalnum():
            raise ScheduleError(f"There is no schedule {schedule_id[:64]!r}.")
        for name in self.databases.names:
            try:
                rows = await self.store.select(self.databases.get(name), schedule_id=schedule_id)
            except PgbotError as exc:
                log.warning("schedule_lookup_failed", database=name, error=exc.user_message)
                continue
            if rows:
                return rows[0]
        raise ScheduleError(f"There is no schedule {schedule_id!r} (it may have been deleted).")

    async def change(self, schedule_id: str, action: Change, *, by: str, groups: tuple[str, ...] = (),
                     operator: bool = False) -> Reply:
        """Pause, resume or delete; ``operator`` (the command line) skips the creator-or-approver rule."""
        schedule = await self.find(schedule_id)
        if not operator:
            why = self._may_not_manage(schedule, by=by, groups=groups)
            if why is not None:
                raise ScheduleError(f"You cannot {action} schedule {schedule.id}: {why}.")
        database = self.databases.get(schedule.database)
        if action == "delete":
            done = await self.store.delete(database, schedule.id)
        elif action == "pause":
            done = await self.store.set_paused(database, schedule.id, paused=True)
        else:
            # Runs missed while paused are not made up: the next one is the first after now.
            done = await self.store.set_paused(database, schedule.id, paused=False,
                                               next_due=self.due_time(schedule, after=self.clock.now()))
        if not done:
            raise ScheduleError(f"There is no schedule {schedule.id!r} (it may have been deleted).")
        await self.record(schedule, _EVENTS[action], by=by, result=action, strict=True)
        verb = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[action]
        after = schedule if action == "delete" else (await self.find(schedule.id))
        cards = () if action == "delete" else (after.card(),)
        return Reply(kind=ReplyKind.INFO, text=f"Schedule {schedule.id} {verb} by {by}.", database=schedule.database,
                     schedules=cards)

    def _may_not_manage(self, schedule: Schedule, *, by: str, groups: tuple[str, ...]) -> str | None:
        """None when ``by`` created it or may approve changes on its database, else why not."""
        if by == schedule.created_by:
            return None
        settings = self.databases.get(schedule.database).settings
        try:
            actor = resolve_role(database=schedule.database, settings=settings, identity=by, groups=groups)
        except AccessDeniedError:
            actor = Actor(identity=by, role=None, database=schedule.database, groups=groups)
        if may_approve(settings=settings, approver=actor, requested_by=schedule.created_by) is None:
            return None
        return "only its creator or an approver of this database may"

    async def stop(self, schedule: Schedule, reason: str) -> None:
        """pgbot stops a schedule itself (the creator lost the mapping, the SQL is refused now)."""
        await self.store.set_paused(self.databases.get(schedule.database), schedule.id, paused=True, reason=reason)
        await self.record(schedule, AuditEvent.SCHEDULE_STOPPED, by="pgbot", result=reason)

    async def record(self, schedule: Schedule, event: AuditEvent, *, by: str, result: str,
                     duration_ms: float | None = None, rows: int | None = None, strict: bool = False) -> None:
        """One audit row. ``strict`` (create, pause, resume, delete): a failure is raised to the person; a
        run's audit failing is logged, never fatal to the run it describes."""
        entry = AuditRecord(
            event=event, action_id=schedule.id, database=schedule.database, requested_by=schedule.created_by,
            decided_by=by, role=schedule.role, sql=schedule.sql,
            sql_hash=hashlib.sha256(schedule.sql.encode()).hexdigest(),
            result=f"{schedule.kind.value}: {result}"[:1000], rows_affected=rows, duration_ms=duration_ms,
        )
        try:
            await self.audit.record(entry)
        except PgbotError as exc:
            if strict:
                raise
            log.error("schedule_audit_failed", schedule=schedule.id, audit_event=event.value, error=exc.user_message)

    def due_time(self, schedule: Schedule, *, after: dt.datetime) -> dt.datetime:
        return next_due(schedule.cron, zone_named(schedule.timezone), after=after)

    def latest_due(self, schedule: Schedule, *, now: dt.datetime) -> tuple[dt.datetime, int]:
        """The last due time not after ``now``, and how many earlier due times it stands for (missed runs
        collapse into one run; counted up to 1000)."""
        due, skipped = schedule.next_due, 0
        for _ in range(1000):
            following = self.due_time(schedule, after=due)
            if following > now:
                break
            due, skipped = following, skipped + 1
        return due, skipped

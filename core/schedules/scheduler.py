"""The loop every ``pgbot slack`` / ``pgbot discord`` replica runs: find due schedules, claim, run, post, record.

Exactly once across replicas: a due run is claimed in Redis (core.schedules.claims) before it runs, and
recorded in Postgres with a compare-and-set on its due time. Runs missed while every replica was down are
found on the next tick (``next_due`` is in the past), run once, labelled late, and the next due time is the
first one after *now*, so any number of missed runs collapse into one. Time comes from a :class:`Clock`, so
tests move it by hand; :meth:`tick` is the whole of one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from core.db.audit_rows import AuditEvent
from core.errors import PgbotError
from core.messages import Reply, ReplyKind
from core.schedules.claims import RunClaims
from core.schedules.clock import Clock, SystemClock
from core.schedules.model import Schedule
from core.schedules.run import RunResult, late_label, run_schedule
from core.schedules.service import Schedules
from core.schedules.timing import zone_named

log = structlog.get_logger(__name__)
RUN_SHARE_OF_CLAIM = 0.8  # a run is cut off well before its claim expires, so no other replica starts it meanwhile


class Scheduler:
    def __init__(self, *, schedules: Schedules, claims: RunClaims, clock: Clock | None = None) -> None:
        self.schedules = schedules
        self.claims = claims
        self.clock = clock or SystemClock()
        self._restarted = True  # until the first tick that could run anything
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> int:
        """One pass over every configured database; returns how many runs this replica carried out."""
        platforms = self.schedules.senders.ready_platforms()
        if not platforms:
            return 0
        now = self.clock.now()
        restart, self._restarted = self._restarted, False
        ran = 0
        for name in self.schedules.databases.names:
            try:
                due = await self.schedules.store.select(self.schedules.databases.get(name), due_by=now,
                                                        platforms=platforms)
            except PgbotError as exc:
                log.warning("schedules_not_read", database=name, error=exc.user_message)
                continue
            for schedule in due:
                if self._stopping.is_set():
                    return ran
                ran += await self._run(schedule, restart=restart)
        return ran

    async def _run(self, schedule: Schedule, *, restart: bool) -> int:
        due = schedule.next_due
        key = f"{schedule.id}:{int(due.timestamp())}"
        config = self.schedules.settings.schedules
        try:
            if not await self.claims.claim(key, ttl_s=config.claim_ttl_s):
                return 0  # another replica has it
        except PgbotError as exc:
            log.warning("schedule_not_claimed", schedule=schedule.id, error=exc.user_message)
            return 0
        started_at = self.clock.now()
        started = time.perf_counter()
        latest, skipped = self.schedules.latest_due(schedule, now=started_at)
        late = skipped > 0 or (started_at - latest).total_seconds() > config.late_after_s
        label = late_label(due=latest, ran=started_at, zone=zone_named(schedule.timezone), restart=restart,
                           skipped=skipped) if late else ""
        posted = False
        try:
            async with asyncio.timeout(config.claim_ttl_s * RUN_SHARE_OF_CLAIM):
                result = await self._groups_then_run(schedule, label=label)
                outcome = result.outcome
                if result.replies:
                    outcome = await self._deliver(schedule, result)
                    posted = True
        except TimeoutError:
            result = RunResult(replies=(), outcome="failed: the run took longer than its claim allows", failed=True)
            outcome = result.outcome
        except asyncio.CancelledError:
            if not posted:  # cancelled (shutdown) before posting: another replica may take it at once
                await self.claims.release(key)
            raise
        except Exception:  # a bug: recorded as failed (not retried every tick), traceback logged
            log.exception("schedule_run_failed", schedule=schedule.id)
            result = RunResult(replies=(), outcome="failed: internal error (see pgbot's log)", failed=True)
            outcome = result.outcome
        await self._record(schedule, result, outcome=outcome, ms=(time.perf_counter() - started) * 1000)
        log.info("schedule_ran", schedule=schedule.id, database=schedule.database, outcome=outcome[:200],
                 late=late)
        return 1

    async def _groups_then_run(self, schedule: Schedule, *, label: str) -> RunResult:
        """Ask the platform for the creator's groups now (a Discord role taken away stops the schedule), then run."""
        sender = self.schedules.senders.get(schedule.destination.platform)
        try:
            groups = await sender.current_groups(schedule.destination, schedule.created_by) if sender else None
        except PgbotError as exc:
            text = f"Schedule {schedule.id} did not run: {exc.user_message}; it runs again at its next time."
            return RunResult(replies=(Reply(kind=ReplyKind.ERROR, text=text, database=schedule.database),),
                             outcome=f"failed: {exc.user_message}", failed=True)
        return await run_schedule(schedule, databases=self.schedules.databases, guard=self.schedules.guard,
                                  label=label, charts=self.schedules.settings.charts, groups=groups)

    async def _deliver(self, schedule: Schedule, result: RunResult) -> str:
        sender = self.schedules.senders.get(schedule.destination.platform)
        if sender is None:
            return f"not delivered: no {schedule.destination.platform} sender here"
        try:
            await sender.send(schedule.destination, result.replies)
        except Exception as exc:  # an SDK's error: recorded as not delivered, traceback logged
            log.exception("schedule_not_delivered", schedule=schedule.id, platform=schedule.destination.platform)
            return f"not delivered: {type(exc).__name__}"
        return result.outcome

    async def _record(self, schedule: Schedule, result: RunResult, *, outcome: str, ms: float) -> None:
        database = self.schedules.databases.get(schedule.database)
        now = self.clock.now()
        try:
            if result.stop_reason is not None:
                await self.schedules.stop(schedule, result.stop_reason)
            moved = await self.schedules.store.record_run(
                database, schedule.id, due=schedule.next_due, next_due=self.schedules.due_time(schedule, after=now),
                ran_at=now, outcome=outcome, findings=result.findings)
        except PgbotError as exc:
            log.error("schedule_run_not_recorded", schedule=schedule.id, error=exc.user_message)
            return
        if not moved:
            log.warning("schedule_run_already_recorded", schedule=schedule.id)
        if result.stop_reason is None:
            event = AuditEvent.SCHEDULE_FAILED if result.failed or outcome.startswith("not delivered") \
                else AuditEvent.SCHEDULE_RAN
            await self.schedules.record(schedule, event, by="pgbot scheduler", result=outcome, duration_ms=ms)

    def start(self) -> None:
        """Tick every ``[schedules] tick_s`` in the background until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="pgbot-scheduler")

    async def _loop(self) -> None:
        interval = self.schedules.settings.schedules.tick_s
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:  # one bad pass must not end scheduling; the next tick retries
                log.exception("schedule_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)

    async def stop(self, *, grace_s: float = 10.0) -> None:
        """Take no new runs; a run in progress gets ``grace_s`` to finish, then is cancelled (its claim is
        released, so another replica runs it)."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=grace_s)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

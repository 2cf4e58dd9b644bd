"""Schedules on real Postgres and Redis: exactly-once runs across replicas, a killed replica, missed runs after
a restart, surviving a restart, the role re-check, refusals, permissions, health changes, DST and the CLI.

Time comes from a hand-moved clock; each "replica" is a scheduler with its own pools and Redis client.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from bot.cli import main
from core import ReplyKind
from core.errors import GuardError, ScheduleError
from core.permissions import resolve_role
from core.schedules import Schedule
from tests.helpers import active_queries, final_reply, message, settings_for
from tests.integration.change_env import ANALYST, DBA, LEAD, OTHER, ChangeEnv, change_env_fixture  # noqa: F401
from tests.integration.diagnostics_env import queued_access_exclusive
from tests.integration.schedule_env import (  # noqa: F401 - fixture
    BERLIN,
    HERE,
    MONDAY_8,
    Replica,
    ScheduleEnv,
    schedule_env_fixture,
    with_berlin,
)

REPORT_SQL = "SELECT id, qty FROM items ORDER BY id LIMIT 3"
MONDAY_9 = MONDAY_8 + dt.timedelta(hours=1)


async def create(replica: Replica, *, who: str = ANALYST, when: str = "every monday at 9:00",
                 sql: str = REPORT_SQL, kind: str = "report", question: str = "first three items",
                 chart: str | None = None) -> Schedule:
    service = replica.schedules
    database = service.databases.get("shop")
    actor = resolve_role(database="shop", settings=database.settings, identity=who)
    return await service.create(actor=actor, destination=HERE, when=when, kind=kind, question=question, sql=sql,
                                chart=chart)


async def audit_events(env: ChangeEnv, schedule_id: str) -> list[str]:
    rows = await env.fetch("SELECT event FROM pgbot.audit WHERE action_id = $1 ORDER BY id", schedule_id)
    return [r["event"] for r in rows]


async def test_two_replicas_run_a_due_report_exactly_once(change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    a, b = schedule_env.replica(change_env.settings()), schedule_env.replica(change_env.settings())
    schedule = await create(a)
    assert schedule.next_due == MONDAY_9.astimezone(dt.UTC)
    assert schedule.role == change_env.analyst and schedule.timezone == "Europe/Berlin"

    assert await a.scheduler.tick() + await b.scheduler.tick() == 0  # 08:00: not due yet
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(seconds=10))
    ran = await asyncio.gather(*(r.scheduler.tick() for r in (a, b, a, b)))
    assert sum(ran) == 1, ran
    sent = a.outbox.sent + b.outbox.sent
    assert len(sent) == 1
    destination, replies = sent[0]
    assert destination == HERE
    (reply,) = replies
    assert reply.kind is ReplyKind.RESULT and reply.sql == (REPORT_SQL,)
    assert reply.table is not None and reply.table.rows == ((1, 1), (2, 2), (3, 3))
    assert reply.text.startswith("Scheduled report: first three items (At 09:00 on Monday (Europe/Berlin)")
    assert "late" not in reply.text

    schedule_env.clock.set(MONDAY_9 + dt.timedelta(minutes=5))
    assert await a.scheduler.tick() + await b.scheduler.tick() == 0
    row = (await change_env.fetch("SELECT next_due, last_due, last_outcome FROM pgbot.schedules WHERE id = $1",
                                  schedule.id))[0]
    assert row["next_due"] == (MONDAY_9 + dt.timedelta(days=7)).astimezone(dt.UTC)
    assert row["last_due"] == MONDAY_9.astimezone(dt.UTC) and row["last_outcome"] == "posted 3 rows"
    assert await audit_events(change_env, schedule.id) == ["schedule_created", "schedule_ran"]


async def test_a_run_claimed_by_a_replica_that_died_runs_once_its_claim_expires(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    """Decision: a claimed-but-crashed run is retried (late), not lost: the claim expires after claim_ttl_s."""
    a, b = schedule_env.replica(change_env.settings()), schedule_env.replica(change_env.settings())
    schedule = await create(a)
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(seconds=5))
    key = f"{schedule.id}:{int(schedule.next_due.timestamp())}"
    ttl_s = a.schedules.settings.schedules.claim_ttl_s
    assert await a.claims.claim(key, ttl_s=ttl_s)  # replica a takes the run ...
    await schedule_env.stop(a)  # ... and dies before running it

    assert await b.scheduler.tick() == 0 and not b.outbox.sent  # the claim holds while it lives
    client = aioredis.Redis.from_url(schedule_env.redis_url)
    try:
        remaining_ms = await client.pttl(b.claims.key(key))
        assert 0 < remaining_ms <= ttl_s * 1000  # it will expire on its own
        await client.delete(b.claims.key(key))  # as Redis does when the TTL runs out (not waited for here)
    finally:
        await client.aclose()
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(minutes=20))
    assert await b.scheduler.tick() == 1
    assert b.outbox.texts[0].endswith("(late: due 09:00, ran 09:20)")
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(minutes=21))
    assert await b.scheduler.tick() == 0 and len(b.outbox.sent) == 1


async def test_missed_runs_while_every_replica_was_down_run_once_late_after_a_restart(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    first = schedule_env.replica(change_env.settings())
    created = await create(first, when="daily at 9:00")
    await schedule_env.stop(first)  # every replica is down from Monday 08:00 ...
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(days=2, minutes=42))  # ... until Wednesday 09:42

    restarted = schedule_env.replica(change_env.settings())
    stored = (await restarted.schedules.list())[0]
    assert [(s.id, s.question, s.sql, s.role, s.created_by, s.destination, s.cron, s.timezone) for s in stored] == [
        (created.id, "first three items", REPORT_SQL, change_env.analyst, ANALYST, HERE, "0 9 * * *", "Europe/Berlin")]
    assert await restarted.scheduler.tick() == 1
    assert restarted.outbox.texts == [
        "Scheduled report: first three items (At 09:00 every day (Europe/Berlin), schedule "
        f"{created.id}) (late: due 09:00, ran 09:42 after a restart; 2 earlier runs missed)"]
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(days=2, minutes=43))
    assert await restarted.scheduler.tick() == 0
    next_due = await change_env.fetchval("SELECT next_due FROM pgbot.schedules WHERE id = $1", created.id)
    assert next_due == (MONDAY_9 + dt.timedelta(days=3)).astimezone(dt.UTC)  # Thursday 09:00


async def test_a_daily_run_at_0230_happens_once_on_both_dst_days(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    replica = schedule_env.replica(change_env.settings())
    for day, expected_local in ((dt.datetime(2026, 3, 29, tzinfo=BERLIN), "03:00"),
                                (dt.datetime(2026, 10, 25, tzinfo=BERLIN), "02:30")):
        schedule_env.clock.set(day - dt.timedelta(hours=1))
        schedule = await create(replica, when="daily at 2:30")
        replica.outbox.sent.clear()
        ran_at: list[str] = []
        at = day.astimezone(dt.UTC)
        for _ in range(12):  # every 30 real minutes from local midnight to 06:00 (05:00 in spring)
            schedule_env.clock.set(at)
            if await replica.scheduler.tick():
                ran_at.append(at.astimezone(BERLIN).strftime("%H:%M"))
            at += dt.timedelta(minutes=30)
        assert ran_at == [expected_local], (day, ran_at)
        await replica.schedules.change(schedule.id, "delete", by=ANALYST)


async def test_someone_who_lost_the_mapping_stops_their_schedule_with_a_message(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    schedule = await create(schedule_env.replica(change_env.settings()))
    roles = {k: v for k, v in change_env.role_map().items() if k != ANALYST}  # the admin removes the analyst
    after = schedule_env.replica(change_env.settings(roles=roles))
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(seconds=3))
    assert await after.scheduler.tick() == 1
    (text,) = after.outbox.texts
    assert f"This schedule is stopped: {ANALYST} is no longer mapped to a database role on 'shop'" in text
    assert "Nothing was run" in text
    row = (await change_env.fetch("SELECT paused, stopped_reason FROM pgbot.schedules WHERE id = $1",
                                  schedule.id))[0]
    assert row["paused"] and "no longer mapped" in row["stopped_reason"]
    assert await audit_events(change_env, schedule.id) == ["schedule_created", "schedule_stopped"]
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(days=7, seconds=3))
    assert await after.scheduler.tick() == 0 and len(after.outbox.sent) == 1


async def test_a_creator_now_mapped_to_another_role_is_stopped_too(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    schedule = await create(schedule_env.replica(change_env.settings()))
    roles = {**change_env.role_map(), ANALYST: change_env.dba}
    after = schedule_env.replica(change_env.settings(roles=roles))
    schedule_env.clock.set(MONDAY_9)
    assert await after.scheduler.tick() == 1
    assert f"now maps to role {change_env.dba}, not {change_env.analyst}" in after.outbox.texts[0]
    assert await change_env.fetchval("SELECT paused FROM pgbot.schedules WHERE id = $1", schedule.id) is True


CHANGES = (
    "DELETE FROM items",
    "UPDATE items SET qty = 0",
    "WITH gone AS (DELETE FROM items RETURNING *) SELECT count(*) FROM gone",
    "SELECT 1; DROP TABLE items",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT nextval('s')",
    "COPY items TO PROGRAM 'id'",
    "CREATE TABLE evil AS SELECT * FROM items",
)


async def test_a_schedule_whose_sql_changes_data_is_refused(change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    replica = schedule_env.replica(change_env.settings())
    agent = change_env.agent(with_berlin(change_env.settings()))
    for sql in CHANGES:
        with pytest.raises(GuardError):
            await create(replica, sql=sql)
        reply = await final_reply(agent, message(f'/schedule "every hour" {sql}', user="UANALYST"))
        assert reply.kind is ReplyKind.ERROR and not reply.schedules, sql
    assert (await replica.schedules.list())[0] == []
    assert await change_env.fetchval("SELECT count(*) FROM items") == 10


async def test_a_report_the_role_cannot_run_is_refused_when_created(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    replica = schedule_env.replica(change_env.settings())
    with pytest.raises(Exception, match="permission denied for table secrets"):
        await create(replica, who=OTHER, sql="SELECT secret FROM secrets")
    for when in ("every minute", "* * * * *", "every monday at 9; DROP TABLE items"):
        with pytest.raises(ScheduleError):
            await create(replica, when=when)
    assert (await replica.schedules.list())[0] == []


async def test_only_the_creator_or_an_approver_may_pause_resume_or_delete(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    replica = schedule_env.replica(change_env.settings())
    service = replica.schedules
    schedule = await create(replica)
    for action in ("pause", "resume", "delete"):
        with pytest.raises(ScheduleError, match="only its creator or an approver"):
            await service.change(schedule.id, action, by=OTHER)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="There is no schedule"):
        await service.change("nosuch' OR 1=1 --", "pause", by=DBA)
    paused = await service.change(schedule.id, "pause", by=LEAD)  # an approver by identity
    assert paused.text == f"Schedule {schedule.id} paused by {LEAD}." and paused.schedules[0].paused
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(minutes=1))
    assert await replica.scheduler.tick() == 0  # paused: not run
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(days=1))  # resumed on Tuesday: Monday's run is not made up
    resumed = await service.change(schedule.id, "resume", by=ANALYST)  # the creator
    assert not resumed.schedules[0].paused
    assert await replica.scheduler.tick() == 0
    deleted = await service.change(schedule.id, "delete", by=DBA)  # an approver by role
    assert deleted.text == f"Schedule {schedule.id} deleted by {DBA}." and not deleted.schedules
    assert await audit_events(change_env, schedule.id) == [
        "schedule_created", "schedule_paused", "schedule_resumed", "schedule_deleted"]


async def test_a_health_schedule_posts_what_is_new_or_worse_then_that_it_cleared(
        fresh_db: str, redis_url: str, schedule_env: ScheduleEnv) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)")
    finally:
        await conn.close()
    replica = schedule_env.replica(settings_for(fresh_db, redis_url=redis_url))
    schedule = await create(replica, who="slack:UOPS", when="every hour", kind="health", sql="", question="")
    assert schedule.sql == "" and schedule.cron == "0 * * * *"
    hour = MONDAY_8 + dt.timedelta(hours=1)

    async def tick_at(at: dt.datetime) -> list[str]:
        replica.outbox.sent.clear()
        schedule_env.clock.set(at)
        assert await replica.scheduler.tick() == 1
        return replica.outbox.texts

    await tick_at(hour)  # whatever a fresh database shows first
    async with queued_access_exclusive(fresh_db, "items"):
        (problem,) = await tick_at(hour + dt.timedelta(hours=1))
        assert problem.startswith("Health check (At the start of every hour")
        assert "CRITICAL: Session" in problem and "blocks 1 session" in problem
        assert await tick_at(hour + dt.timedelta(hours=2)) == []  # the same problem: nothing new to say
    (cleared,) = await tick_at(hour + dt.timedelta(hours=3))
    assert "Cleared since the last check:" in cleared and "blocking" in cleared and "CRITICAL" not in cleared
    assert await tick_at(hour + dt.timedelta(hours=4)) == []


def _config(tmp_path: Path, env: ChangeEnv) -> Path:
    roles = "\n".join(f'"{who}" = "{role}"' for who, role in env.role_map().items())
    path = tmp_path / "pgbot.toml"
    path.write_text(f'[databases.shop]\ndsn = "{env.dsn}"\n[databases.shop.roles]\n{roles}\n'
                    f'[schedules]\ntimezone = "Europe/Berlin"\n', encoding="utf-8")
    return path


async def test_pgbot_schedule_lists_pauses_resumes_and_deletes(
        tmp_path: Path, change_env: ChangeEnv, schedule_env: ScheduleEnv,
        capsys: pytest.CaptureFixture[str]) -> None:
    schedule = await create(schedule_env.replica(change_env.settings()))
    config = str(_config(tmp_path, change_env))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["schedule", *args, "--config", config])
        out, err = capsys.readouterr()
        return code, out, err

    loop_free = asyncio.get_running_loop()  # main() runs its own loop: call it from a worker thread
    code, out, _ = await loop_free.run_in_executor(None, run, "list")
    assert code == 0 and schedule.id in out and "At 09:00 on Monday" in out and REPORT_SQL in out
    for action, paused in (("pause", True), ("resume", False)):
        code, out, _ = await loop_free.run_in_executor(None, run, action, schedule.id)
        assert code == 0 and f"Schedule {schedule.id} {action}d by cli:" in out
        assert await change_env.fetchval("SELECT paused FROM pgbot.schedules WHERE id = $1", schedule.id) is paused
    code, _, err = await loop_free.run_in_executor(None, run, "pause", "nosuch")
    assert code == 1 and "There is no schedule 'nosuch'" in err and "Traceback" not in err
    code, out, _ = await loop_free.run_in_executor(None, run, "delete", schedule.id)
    assert code == 0 and await change_env.fetchval("SELECT count(*) FROM pgbot.schedules") == 0
    events = await audit_events(change_env, schedule.id)
    assert events == ["schedule_created", "schedule_paused", "schedule_resumed", "schedule_deleted"]
    decided = await change_env.fetch("SELECT decided_by FROM pgbot.audit WHERE action_id = $1 AND event <> "
                                     "'schedule_created'", schedule.id)
    assert all(r["decided_by"].startswith("cli:") for r in decided)


async def test_shutdown_mid_run_releases_the_claim_and_the_run_stays_due(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    replica = schedule_env.replica(change_env.settings())
    schedule = await create(replica, sql="SELECT pg_sleep(30), 'pgbot-shutdown-marker' AS marker")
    schedule_env.clock.set(MONDAY_9)
    replica.scheduler.start()  # the loop ticks at once: it claims the run and starts the slow query
    await wait_until_async(lambda: active_queries(change_env.dsn, "pgbot-shutdown-marker"), expected=1)
    await replica.scheduler.stop(grace_s=0)  # SIGTERM with no grace left
    key = replica.claims.key(f"{schedule.id}:{int(schedule.next_due.timestamp())}")
    client = aioredis.Redis.from_url(schedule_env.redis_url)
    try:
        assert await client.exists(key) == 0  # released: another replica may run it now
    finally:
        await client.aclose()
    assert not replica.outbox.sent
    await wait_until_async(lambda: active_queries(change_env.dsn, "pgbot-shutdown-marker"), expected=0)
    assert await change_env.fetchval("SELECT next_due FROM pgbot.schedules WHERE id = $1",
                                     schedule.id) == schedule.next_due
    assert await audit_events(change_env, schedule.id) == ["schedule_created"]


async def wait_until_async(probe: Callable[[], Awaitable[int]], *, expected: int, within_s: float = 10.0) -> None:
    seen: list[int] = []

    async def poll() -> None:
        while True:
            seen.append(await probe())
            if seen[-1] == expected:
                return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout=within_s)
    except TimeoutError:
        raise AssertionError(f"expected {expected}, saw {seen[-5:]}") from None

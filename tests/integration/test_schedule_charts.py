"""Scheduled reports with a chart on real Postgres and Redis: the choice is stored and drawn at each run, a
result that cannot be drawn posts its table with the reason, hostile choices are refused, and a schedules table
an older pgbot made (no chart column) keeps working and gains the column."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from core import ReplyKind
from core.errors import ScheduleError
from core.schedules.store import CREATE_SQL
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.integration.schedule_env import (  # noqa: F401 - fixture
    HERE,
    MONDAY_8,
    ScheduleEnv,
    schedule_env_fixture,
)
from tests.integration.test_schedules import create

MONDAY_9 = MONDAY_8 + dt.timedelta(hours=1)
BY_NAME = "SELECT name, qty FROM items ORDER BY id LIMIT 4"
PNG = b"\x89PNG\r\n\x1a\n"


async def test_a_chart_report_posts_its_table_and_the_chart_each_run(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    replica = schedule_env.replica(change_env.settings())
    schedule = await create(replica, question="qty by item", sql=BY_NAME, chart="bar")
    assert schedule.chart == "bar" and "report with a bar chart: qty by item" in schedule.summary()
    assert await change_env.fetchval("SELECT chart FROM pgbot.schedules WHERE id = $1", schedule.id) == "bar"
    assert (await replica.schedules.find(schedule.id)).chart == "bar"  # read back as stored

    schedule_env.clock.set(MONDAY_9 + dt.timedelta(seconds=5))
    assert await replica.scheduler.tick() == 1
    ((_, (reply,)),) = replica.outbox.sent
    assert reply.kind is ReplyKind.RESULT and reply.table is not None and reply.table.row_count == 4
    assert reply.chart is not None and reply.chart.kind == "bar" and reply.chart.png.startswith(PNG)
    assert reply.chart.sql == BY_NAME and "No chart" not in reply.text
    outcome = await change_env.fetchval("SELECT last_outcome FROM pgbot.schedules WHERE id = $1", schedule.id)
    assert outcome == "posted 4 rows and a bar chart"


async def test_a_result_that_cannot_be_drawn_posts_the_table_with_the_one_line_reason(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    replica = schedule_env.replica(change_env.settings())
    schedule = await create(replica, sql="SELECT name FROM items ORDER BY id LIMIT 3", chart="auto")  # text only
    schedule_env.clock.set(MONDAY_9 + dt.timedelta(seconds=5))
    assert await replica.scheduler.tick() == 1
    ((_, (reply,)),) = replica.outbox.sent
    assert reply.chart is None and reply.table is not None and reply.table.row_count == 3
    heading, reason = reply.text.split("\n")  # the heading, then exactly one line saying why
    assert heading.startswith("Scheduled report: first three items") and reason.startswith("No chart: ")
    outcome = await change_env.fetchval("SELECT last_outcome FROM pgbot.schedules WHERE id = $1", schedule.id)
    assert outcome.startswith("posted 3 rows, no chart: ")
    assert await change_env.audit_events(schedule.id) == ["schedule_created", "schedule_ran"]


@pytest.mark.parametrize("chart", ["pie", "bar'); DROP TABLE items; --", "BAR CHART", "x" * 5000])
async def test_a_chart_that_is_not_one_of_the_four_is_refused(
        change_env: ChangeEnv, schedule_env: ScheduleEnv, chart: str) -> None:
    replica = schedule_env.replica(change_env.settings())
    with pytest.raises(ScheduleError, match="chart is one of auto, line, bar, scatter") as refused:
        await create(replica, sql=BY_NAME, chart=chart)
    assert len(refused.value.user_message) < 200  # a huge value is not echoed back whole
    assert await change_env.fetchval("SELECT count(*) FROM items") == 10
    assert await change_env.fetchval("SELECT to_regclass('pgbot.schedules')") is None  # nothing stored


async def test_a_health_check_with_a_chart_is_refused(change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    replica = schedule_env.replica(change_env.settings())
    with pytest.raises(ScheduleError, match="Only a report can post a chart"):
        await create(replica, when="every hour", kind="health", question="", sql="", chart="auto")


async def test_a_table_an_older_pgbot_made_keeps_working_and_gains_the_chart_column(
        change_env: ChangeEnv, schedule_env: ScheduleEnv) -> None:
    chart_column = ",\n    chart          text CHECK (chart IN ('auto', 'line', 'bar', 'scatter'))"
    old_create = CREATE_SQL.replace(chart_column, "")
    assert "chart " not in old_create
    conn = await asyncpg.connect(change_env.dsn)
    try:
        await conn.execute(old_create)
        # A row as the older pgbot inserts it (no chart column at all).
        await conn.execute(
            "INSERT INTO pgbot.schedules (id, kind, cron, timezone, question, sql, platform, workspace, channel,"
            " thread, created_by, role, next_due) VALUES ('0ld', 'report', '0 9 * * 1', 'Europe/Berlin', 'old',"
            " $1, $2, $3, $4, $5, 'slack:UANALYST', $6, $7)",
            BY_NAME, HERE.platform, HERE.workspace, HERE.channel, HERE.thread, change_env.analyst, MONDAY_9)
    finally:
        await conn.close()
    replica = schedule_env.replica(change_env.settings())
    assert (await replica.schedules.find("0ld")).chart is None  # read before any upgrade: no column, no chart

    made = await create(replica, question="q", sql=BY_NAME, chart="line")
    columns = await change_env.fetch("SELECT attname FROM pg_attribute WHERE attrelid = 'pgbot.schedules'::regclass"
                                     " AND attname = 'chart'")
    assert len(columns) == 1
    with pytest.raises(asyncpg.CheckViolationError):  # the added column checks its values as a new table's does
        await change_env.fetch("UPDATE pgbot.schedules SET chart = 'pie' WHERE id = $1", made.id)

    schedule_env.clock.set(MONDAY_9 + dt.timedelta(seconds=5))
    assert await replica.scheduler.tick() == 2
    by_question = {reply.text.split(" (")[0]: reply for _, replies in replica.outbox.sent for reply in replies}
    assert by_question["Scheduled report: old"].chart is None  # the old row: its table alone
    new = by_question["Scheduled report: q"].chart
    assert new is not None and new.kind == "line"

    fresh = schedule_env.replica(change_env.settings())  # another replica: the column is there, nothing to do
    await fresh.schedules.store.ensure(fresh.schedules.databases.get("shop"))

"""One scheduled run: check the creator may still run it as the same role, run it, and say what to post.

The role is resolved again from the *current* config at every run (the creator's identity and the platform
groups stored with the schedule): someone whose mapping was removed, or now maps to another role, gets no
more runs, and the schedule stops with a message in its channel. Reports go through the same guard and read
path as a question (``check_read``, then a READ ONLY transaction as the role, rows capped), and a report made
with a chart gets one drawn from the rows it posts (core.charts, in its worker thread), or the one-line reason
there is none; health checks run :func:`core.diagnostics.health.health_check` as the role and post only what
changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from core.charts import draw_chart, with_notes
from core.config import ChartSettings
from core.db.registry import DatabaseRegistry
from core.diagnostics.health import health_check
from core.errors import AccessDeniedError, ChartError, GuardError, PgbotError, UnknownDatabaseError
from core.messages import Reply, ReplyKind
from core.permissions import resolve_role
from core.schedules.health_diff import Snapshot, compare
from core.schedules.model import Schedule, ScheduleKind
from core.sqlguard import SqlGuard


@dataclass(frozen=True, slots=True)
class RunResult:
    replies: tuple[Reply, ...]  # what to post (none: a health check with nothing new)
    outcome: str  # one line for the row and the audit
    findings: Snapshot | None = None  # a health check's problems now, stored for the next comparison
    stop_reason: str | None = None  # set when the schedule must stop (and not run again until resumed)
    failed: bool = False


def late_label(*, due: dt.datetime, ran: dt.datetime, zone: dt.tzinfo, restart: bool, skipped: int = 0) -> str:
    """"(late: due 09:00, ran 09:42 after a restart)"; the date is added when the day differs, and the number
    of earlier missed runs that this one stands for."""
    due_local, ran_local = due.astimezone(zone), ran.astimezone(zone)
    fmt = "%H:%M" if due_local.date() == ran_local.date() else "%a %Y-%m-%d %H:%M"
    why = " after a restart" if restart else ""
    more = f"; {skipped} earlier run{'s' if skipped != 1 else ''} missed" if skipped else ""
    return f"(late: due {due_local.strftime(fmt)}, ran {ran_local.strftime(fmt)}{why}{more})"


async def run_schedule(schedule: Schedule, *, databases: DatabaseRegistry, guard: SqlGuard, label: str,
                       charts: ChartSettings, groups: tuple[str, ...] | None = None) -> RunResult:
    """Everything a run may refuse or fail on becomes a :class:`RunResult` (posted in the channel), never an
    exception; ``label`` (the late label, or "") follows the heading; ``charts``: how a report's chart is drawn;
    ``groups``: the creator's platform groups now, when the platform could tell (else those stored with the
    schedule)."""
    heading = _heading(schedule, label)
    try:
        database = databases.get(schedule.database)
        actor = resolve_role(database=schedule.database, settings=database.settings, identity=schedule.created_by,
                             groups=schedule.groups if groups is None else groups)
    except UnknownDatabaseError:
        return _stopped(schedule, heading, f"database '{schedule.database}' is no longer configured")
    except AccessDeniedError:
        return _stopped(schedule, heading, f"{schedule.created_by} is no longer mapped to a database role on "
                                           f"'{schedule.database}'")
    if actor.role != schedule.role:
        return _stopped(schedule, heading, f"{schedule.created_by} now maps to role "
                                           f"{actor.role or 'the login role'}, not {schedule.role or 'the login role'}")
    if schedule.kind is ScheduleKind.HEALTH:
        return await _health(schedule, heading, database_role=actor.role, databases=databases)
    try:
        checked = guard.check_read(schedule.sql, allowed_functions=database.settings.allowed_functions)
    except GuardError as exc:
        return _stopped(schedule, heading, f"its SQL is refused now: {exc.user_message}")
    try:
        # check_read's CheckedSql: fetch checks its functions against the catalog before it runs.
        result = await database.fetch(checked, role=actor.role)
    except PgbotError as exc:
        text = f"{heading}\nThe scheduled query failed: {exc.user_message}"
        return RunResult(replies=(_reply(schedule, ReplyKind.ERROR, text),), outcome=f"failed: {exc.user_message}",
                         failed=True)
    table = result.to_table(max_cell_chars=database.settings.max_cell_chars)
    rows = f"{table.row_count} row{'s' if table.row_count != 1 else ''}" + (" (cut)" if table.truncated else "")
    reply = Reply(kind=ReplyKind.RESULT, text=heading, sql=(checked.sql,), table=table, database=schedule.database)
    if schedule.chart is None:
        return RunResult(replies=(reply,), outcome=f"posted {rows}")
    try:
        chart = await draw_chart(table, settings=charts, kind=None if schedule.chart == "auto" else schedule.chart,
                                 question=schedule.question, sql=checked.sql)
    except ChartError as exc:  # the rows still stand; only the picture is impossible this time
        reply = dataclasses.replace(reply, text=f"{heading}\nNo chart: {exc.user_message}")
        return RunResult(replies=(reply,), outcome=f"posted {rows}, no chart: {exc.user_message}")
    reply = dataclasses.replace(reply, chart=chart, text=with_notes(heading, chart))
    return RunResult(replies=(reply,), outcome=f"posted {rows} and a {chart.kind} chart")


async def _health(schedule: Schedule, heading: str, *, database_role: str | None,
                  databases: DatabaseRegistry) -> RunResult:
    try:
        report = await health_check(databases.postgres(schedule.database), role=database_role)
    except PgbotError as exc:
        text = f"{heading}\nThe health check could not run: {exc.user_message}"
        return RunResult(replies=(_reply(schedule, ReplyKind.ERROR, text),), outcome=f"failed: {exc.user_message}",
                         failed=True)
    change, now = compare(schedule.last_findings, report.findings)
    if change.quiet:
        return RunResult(replies=(), outcome=f"nothing new ({len(now)} open problem(s))", findings=now)
    text = f"{heading}\n{change.render()}"
    return RunResult(replies=(_reply(schedule, ReplyKind.RESULT, text),), findings=now,
                     outcome=f"posted {len(change.new_or_worse)} new or worse, {len(change.cleared)} cleared")


def _heading(schedule: Schedule, label: str) -> str:
    what = "Health check" if schedule.kind is ScheduleKind.HEALTH else f"Scheduled report: {schedule.question}"
    return f"{what} ({schedule.when}, schedule {schedule.id})" + (f" {label}" if label else "")


def _stopped(schedule: Schedule, heading: str, reason: str) -> RunResult:
    text = (f"{heading}\nThis schedule is stopped: {reason}. Nothing was run. The creator or an approver can "
            f"resume it once that is fixed, or delete it.")
    return RunResult(replies=(_reply(schedule, ReplyKind.ERROR, text),), outcome=f"stopped: {reason}",
                     stop_reason=reason[:300])


def _reply(schedule: Schedule, kind: ReplyKind, text: str) -> Reply:
    return Reply(kind=kind, text=text, database=schedule.database)

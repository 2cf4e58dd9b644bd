"""``create_schedule`` and ``list_schedules``: recurring reports and health checks, asked for in plain words.

Creating a schedule changes no user data (only pgbot's own ``pgbot.schedules``), so it is a read tool: the
service validates it (time, guard read check, EXPLAIN as the person's role) and stores it, and the answer
shows it with Pause/Delete buttons. Anything refused comes back to the model as a hint it can explain. A report
posts a chart with its table when the model asks for one, or when the request's words ask for one ("plot …",
"bar chart of …", core.charts.intent), so a model that never fills in ``chart`` still keeps what was asked.
"""

from __future__ import annotations

from typing import Literal

from core.charts import chart_request
from core.errors import GuardError, ModelHint, ScheduleError
from core.messages import Reply, ReplyKind
from core.schedules.model import Destination, Schedule
from core.schedules.service import Schedules
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool

__all__ = ["create_schedule", "list_schedules"]


def _service(ctx: ToolContext) -> Schedules:
    return Schedules(settings=ctx.settings, databases=ctx.databases, guard=ctx.guard)


def destination_of(ctx: ToolContext) -> Destination:
    """The channel a schedule made in this conversation posts to (the ``/schedule`` command's too)."""
    try:
        return Destination.from_thread_key(ctx.thread_key)
    except ValueError:
        raise ScheduleError("pgbot cannot tell which channel this is, so it cannot schedule a post here.") from None


def schedule_list_reply(found: list[Schedule], problems: list[str], *, database: str | None) -> Reply:
    """The channel's schedules with their buttons: ``list_schedules``' answer and ``/schedules``' reply."""
    if not found:
        text = "No schedules post in this channel."
    else:
        text = f"{len(found)} schedule{'s' if len(found) != 1 else ''} post in this channel:"
    if problems:
        text += "\nNot read: " + "; ".join(problems)
    return Reply(kind=ReplyKind.INFO, text=text, database=database, schedules=tuple(s.card() for s in found))


def wanted_chart(ctx: ToolContext, chart: str | None, question: str) -> str | None:
    """The chart asked for: the model's ``chart``, else the one the request's words ask for (the question
    passed and the person's own message), when ``[charts] from_question`` allows; None: the table alone."""
    if chart is not None or not ctx.settings.charts.from_question:
        return chart
    for words in (question, ctx.question):
        request = chart_request(words) if words else None
        if request is not None:
            return request.kind or "auto"
    return None


@tool(kind=ToolKind.READ)
async def create_schedule(ctx: ToolContext, when: str, kind: Literal["report", "health"] = "report",
                          question: str = "", sql: str | None = None,
                          chart: Literal["auto", "line", "bar", "scatter"] | None = None) -> ToolOutput:
    """Schedule a recurring post in this conversation: a report (re-runs one read-only query and posts its
    result each time) or a health check of the current database (posts only problems that are new, worse or
    cleared). Call it only when the user asks for something recurring ("every Monday at 9", "check every
    hour"); for a report, first run the query with run_query, then pass that exact SQL here.

    Args:
        when: when it runs, in plain words ("every Monday at 9:00", "every hour", "daily at 18:30") or cron
        kind: "report" (needs sql) or "health"
        question: the user's request in their words, shown as the report's title
        sql: for a report, the one read-only SQL statement to re-run at each time
        chart: for a report the user wants plotted: auto (chosen from the result), line, bar or scatter;
            leave it out for the table alone
    """
    try:
        schedule = await _service(ctx).create(
            actor=ctx.actor, destination=destination_of(ctx), when=when, kind=kind,
            question=question or ctx.question, sql=sql,
            chart=wanted_chart(ctx, chart, question) if kind == "report" else chart)
    except (ScheduleError, GuardError) as exc:
        raise ModelHint(f"Refused: {exc.user_message}") from None
    with_chart = f" with a {schedule.chart} chart" if schedule.chart else ""
    text = (f"Created schedule {schedule.id}: {schedule.when}, {schedule.kind.value}{with_chart}, runs as "
            f"{schedule.role or 'the login role'}, first run {schedule.next_due.isoformat()}. Tell the user; the "
            "reply shows it with Pause and Delete buttons.")
    return ToolOutput(text=text, schedules=(schedule.card(),))


@tool(kind=ToolKind.READ)
async def list_schedules(ctx: ToolContext) -> ToolOutput:
    """List the scheduled reports and health checks that post in this channel (with Pause/Resume/Delete)."""
    found, problems = await _service(ctx).list(channel=destination_of(ctx))
    reply = schedule_list_reply(found, problems, database=ctx.database.name)
    lines = [reply.text, *(card.summary for card in reply.schedules)]
    return ToolOutput(text="\n".join(lines), schedules=reply.schedules)

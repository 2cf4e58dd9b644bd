"""Chat commands for schedules: ``/schedules`` (also "list schedules"), ``/schedule "WHEN" [chart [KIND]] SQL``,
``/schedule "WHEN" health``, ``/schedule pause|resume|delete ID`` (the terminal has no buttons).

A command's report gets a chart only when it says ``chart``: its "question" is the SQL itself, whose words
("SELECT plot …") say nothing about a chart."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from core.charts import KINDS
from core.errors import PgbotError, ScheduleError
from core.messages import Reply, ReplyKind
from core.schedules.model import Schedule, ScheduleKind
from core.schedules.timing import zone_named
from core.tools.schedules import destination_of, schedule_list_reply

if TYPE_CHECKING:
    from core.agent.host import CommandHost as Agent  # the agent as commands see it; the loop imports this
    from core.schedules.service import Change, Schedules
    from core.tools.registry import ToolContext

HELP = """  /schedule "WHEN" SQL  post this read-only query's result here at those times ("every monday 9:00")
  /schedule "WHEN" chart [line|bar|scatter] SQL  the same, with a chart of the result
  /schedule "WHEN" health  check the database's health then; post what is new, worse or cleared
  /schedules           the schedules posting in this channel, with Pause/Resume/Delete
  /schedule pause|resume|delete ID"""
USAGE = ('Usage: /schedule "every monday at 9:00" [chart [line|bar|scatter]] SELECT …  ·  '
         '/schedule "every hour" health  ·  '
         "/schedule pause|resume|delete ID  ·  /schedules")
LIST_PHRASES = frozenset({"list schedules", "show schedules", "schedules", "list the schedules", "my schedules"})
_SQL_START = re.compile(r"\b(chart|select|with|values|table|show|explain|health)\b", re.IGNORECASE)


def plain_command(text: str) -> str | None:
    """"list schedules" (no model needed) → ``/schedules``; None for anything else."""
    return "/schedules" if text.strip().strip(".?!").lower() in LIST_PHRASES else None


def _service(agent: Agent) -> Schedules:
    if agent.schedules is None:
        raise PgbotError("Schedules are not enabled in this pgbot.")
    return agent.schedules


async def schedules_command(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    found, problems = await _service(agent).list(channel=destination_of(ctx))
    return schedule_list_reply(found, problems, database=ctx.database.name)


async def schedule_command(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    service = _service(agent)
    verb, _, rest = arg.partition(" ")
    changes: dict[str, Change] = {"pause": "pause", "resume": "resume", "delete": "delete"}
    if verb.lower() in changes and rest.strip():
        return await service.change(rest.strip(), changes[verb.lower()], by=ctx.actor.identity,
                                    groups=ctx.actor.groups)
    when, body = split_when(arg)
    chart, body = split_chart(body)
    is_health = body.strip().lower() in ("health", "health check")
    schedule = await service.create(
        actor=ctx.actor, destination=destination_of(ctx), when=when,
        kind=(ScheduleKind.HEALTH if is_health else ScheduleKind.REPORT).value,
        question="" if is_health else body.strip(), sql=None if is_health else body, chart=chart,
    )
    return created_reply(schedule)


def split_chart(body: str) -> tuple[str | None, str]:
    """``chart [line|bar|scatter] SELECT …`` → ("auto" or the kind, the SQL); no leading ``chart``: (None, body)."""
    word, _, rest = body.strip().partition(" ")
    if word.lower() != "chart":
        return None, body
    kind, _, after = rest.strip().partition(" ")
    if kind.lower() in KINDS:
        return kind.lower(), after.strip()
    return "auto", rest.strip()


def created_reply(schedule: Schedule) -> Reply:
    first = schedule.next_due.astimezone(zone_named(schedule.timezone)).strftime("%a %Y-%m-%d %H:%M")
    return Reply(kind=ReplyKind.INFO, database=schedule.database, schedules=(schedule.card(),),
                 text=f"Scheduled: {schedule.when}. First run {first}; it runs as "
                      f"{schedule.role or 'the login role'} and posts in this thread"
                      + (" with a chart of each result." if schedule.chart else "."))


def split_when(arg: str) -> tuple[str, str]:
    """``"every monday 9:00" SELECT …`` (quoted) or ``every monday 9:00 SELECT …`` (up to the SQL) → parts."""
    arg = arg.strip()
    if arg[:1] in ("'", '"'):
        end = arg.find(arg[0], 1)
        if end > 1:
            return arg[1:end], arg[end + 1:].strip()
    match = _SQL_START.search(arg)
    if match is None or match.start() == 0 or not arg[match.start():].strip():
        raise ScheduleError(USAGE)
    return arg[: match.start()].strip(), arg[match.start():].strip()

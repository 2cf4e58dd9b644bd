"""Scheduled reports and health checks: when (words, cron, DST), ``pgbot.schedules``, run claims, runs, the loop.
May import core's lower layers (config, errors, messages, permissions, sqlguard, db, audit, diagnostics) only."""

from core.schedules.claims import MemoryRunClaims, RedisRunClaims, RunClaims
from core.schedules.clock import Clock, ManualClock, SystemClock
from core.schedules.delivery import Sender, Senders
from core.schedules.model import Destination, Schedule, ScheduleKind
from core.schedules.scheduler import Scheduler
from core.schedules.service import Schedules
from core.schedules.store import ScheduleStore
from core.schedules.timing import Cadence, next_due, parse_when

__all__ = [
    "Cadence",
    "Clock",
    "Destination",
    "ManualClock",
    "MemoryRunClaims",
    "RedisRunClaims",
    "RunClaims",
    "Schedule",
    "ScheduleKind",
    "ScheduleStore",
    "Scheduler",
    "Schedules",
    "Sender",
    "Senders",
    "SystemClock",
    "next_due",
    "parse_when",
]

"""What a turn is doing right now, for its "Working on it…" line, and who may cancel it.

The agent opens a :class:`TurnStatus` per turn (its id travels on the WORKING reply as ``Reply.turn_id``) and
binds it to the turn's task; code deep in the turn names its phase with :func:`report_phase` ("reading the
schema", "asking the model", "running the query on shop") without every signature carrying the status. A
context variable is used because the turn runs in its own task (core.threads.inflight): a phase set there can never
leak into another turn. Adapters read :meth:`TurnStatus.wait_changed` to edit their line in place.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from core.messages import Reply, ReplyKind, new_id
from core.threads.inflight import InFlight

_current: ContextVar[TurnStatus | None] = ContextVar("pgbot_turn_status", default=None)

MAX_PHASE = 80
# Tools whose work people recognise; any other tool is "using <tool>".
_TOOL_PHASES = {
    "run_query": "running the query on {db}",
    "propose_change": "previewing the change on {db}",
    "export_csv": "exporting from {db}",
    "list_tables": "reading the schema of {db}",
    "describe_table": "reading the schema of {db}",
    "list_databases": "listing the databases",
    "health_check": "checking the health of {db}",
    "advise_indexes": "looking for useful indexes on {db}",
    "propose_index": "checking the index on {db}",
    "propose_backup": "checking what a backup of {db} needs",
    "propose_migration": "checking the migration on {db}",
    "make_chart": "drawing the chart",
    "explain_query": "asking {db} for the query plan",
    "ask_clarification": "writing a question for you",
}
_COMMAND_PHASES = {"/sql": "running the query on {db}", "/export": "exporting from {db}",
                   "/tables": "reading the schema of {db}", "/describe": "reading the schema of {db}"}


@dataclass(slots=True)
class TurnStatus:
    """One turn in flight: its id (the Cancel button's value), who asked, and what it is doing."""

    asker: str  # the chat identity that sent the message: the only one who may cancel
    thread_key: str
    turn_id: str = field(default_factory=new_id)
    phase: str = ""
    started: float = field(default_factory=time.monotonic)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def set(self, phase: str) -> None:
        phase = " ".join(phase.split())[:MAX_PHASE]
        if phase != self.phase:
            self.phase = phase
            self._changed.set()

    async def wait_changed(self) -> str:
        """The next phase (returns at once if it changed since the last call)."""
        await self._changed.wait()
        self._changed.clear()
        return self.phase

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


class TurnStatuses:
    """The turns in flight in this process, by id."""

    def __init__(self) -> None:
        self._open: dict[str, TurnStatus] = {}

    def open(self, *, asker: str, thread_key: str) -> TurnStatus:
        status = TurnStatus(asker=asker, thread_key=thread_key)
        self._open[status.turn_id] = status
        return status

    def get(self, turn_id: str) -> TurnStatus | None:
        return self._open.get(turn_id)

    def close(self, status: TurnStatus) -> None:
        self._open.pop(status.turn_id, None)


def bind(status: TurnStatus) -> None:
    """Make ``status`` the current turn's (call inside the turn's own task)."""
    _current.set(status)


def report_phase(phase: str) -> None:
    """Name what the current turn is doing now; nothing happens outside a turn (clicks, the CLI)."""
    status = _current.get()
    if status is not None:
        status.set(phase)


def tool_phase(tool: str, *, database: str) -> str:
    return _TOOL_PHASES.get(tool, "using {tool}").format(db=database, tool=tool)


def command_phase(text: str, *, database: str) -> str:
    word = text.split(maxsplit=1)[0].lower() if text.split() else "/"
    return _COMMAND_PHASES.get(word, "running {cmd}").format(db=database, cmd=word[:20])


CANCELLED = "Stopped: you cancelled this request. Nothing was changed."
GONE = "This request has already finished (or runs on another pgbot replica), so there is nothing to cancel."


class _Stoppable(Protocol):
    statuses: TurnStatuses
    inflight: InFlight


def cancel_turn(agent: _Stoppable, *, turn_id: str, user: str) -> Reply:
    """Stop ``turn_id`` if ``user`` asked it (the reply is for the clicker alone)."""
    status = agent.statuses.get(turn_id)
    if status is None:
        return Reply(kind=ReplyKind.INFO, text=GONE)
    if status.asker != user:
        return Reply(kind=ReplyKind.ERROR, text=f"Only {status.asker}, who asked, can cancel this request.",
                     mentions=(status.asker,))
    agent.inflight.stop(turn_id, CANCELLED)
    return Reply(kind=ReplyKind.INFO, text="Cancelling your request…")

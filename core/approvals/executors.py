"""Approved work that is not a single SQL statement: migrations, backups, restores, index builds.

A :class:`core.approvals.pending.PendingAction` whose ``operation`` is not ``"sql"`` is carried out by the
:class:`ActionExecutor` registered for that operation. Executors live next to the tools that propose such
actions and are marked with :func:`executor`; :class:`core.tools.registry.ToolRegistry` collects them from
the same modules, so adding a kind of approved work never edits the approval rules.

The approval rules (who may approve, exactly once, the hash check against the audit trail) are the same for
every operation; the hash covers the operation and its parameters as well as the SQL shown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from core.approvals.pending import SQL_OPERATION

if TYPE_CHECKING:
    from core.approvals.pending import PendingAction
    from core.db.base import PostgresDatabase
    from core.db.registry import DatabaseRegistry

ProgressSink = Callable[[str], Awaitable[None]]
"""Where long work reports progress ("dumped 3 of 12 tables"); adapters post it to the thread."""


@dataclass(frozen=True, slots=True)
class ExecutionOutcome:
    """What an approved action did, for the outcome message and the ``executed`` audit row."""

    status: str  # a short result, e.g. "applied 0007_add_discount" or "backup written: shop-….dump (1.2 MB)"
    duration_ms: float
    rows_affected: int | None = None
    details: str = ""  # optional extra lines for the thread


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    """What an executor may use besides the action itself."""

    database: PostgresDatabase
    databases: DatabaseRegistry
    decided_by: str
    progress: ProgressSink | None = None

    async def report(self, text: str) -> None:
        if self.progress is not None:
            await self.progress(text)


class ActionExecutor(Protocol):
    async def __call__(self, action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome: ...


_EXECUTOR_ATTR = "__pgbot_executor__"


def executor(operation: str) -> Callable[[ActionExecutor], ActionExecutor]:
    """Mark ``async def run(action, ctx) -> ExecutionOutcome`` as the executor of ``operation``."""
    if operation == SQL_OPERATION:
        raise ValueError("the 'sql' operation is built into core.approvals.decisions")

    def mark(func: ActionExecutor) -> ActionExecutor:
        setattr(func, _EXECUTOR_ATTR, operation)
        return func

    return mark


def executor_operation(value: object) -> str | None:
    """The operation ``value`` was marked for with :func:`executor`, if any."""
    found = getattr(value, _EXECUTOR_ATTR, None)
    return found if isinstance(found, str) else None

"""Run diagnostic checks independently: one check's failure is that check's finding, the others still run.

Each check runs in its own savepoint of the caller's READ ONLY transaction. Checks read sizes and definitions
of locked relations from the catalog (:mod:`core.diagnostics.locks`), so a lock wait should not happen; if one
does (a lock taken after the last look), the locks are read again and the check runs once more with them,
so the report costs at most one ``lock_timeout`` and names the lock instead of failing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from core.diagnostics.findings import Finding, Severity
from core.diagnostics.locks import Locks, current_locks

log = structlog.get_logger(__name__)
PRIVILEGE_HINT = "GRANT pg_monitor TO <role> lets it see every session and statistic."
LockAwareCheck = Callable[[Locks], Awaitable[list[Finding]]]


class LockView:
    """The locks diagnostics steer around; refreshed when a statement still ran into one."""

    def __init__(self, locks: Locks) -> None:
        self.locks = locks

    @classmethod
    async def read(cls, conn: asyncpg.Connection) -> LockView:
        return cls(await current_locks(conn))

    async def refresh(self, conn: asyncpg.Connection) -> None:
        self.locks = await current_locks(conn)


async def run_isolated(conn: asyncpg.Connection, name: str, check: LockAwareCheck, view: LockView) -> list[Finding]:
    """``check``'s findings, or one finding saying why it could not run; never raises a Postgres error."""
    for attempt in (1, 2):
        try:
            async with conn.transaction():
                return await check(view.locks)
        except asyncpg.LockNotAvailableError as exc:
            log.info("diagnostic_lock_wait", check=name, attempt=attempt)
            await view.refresh(conn)
            if attempt == 2:
                held = "; ".join(lock.describe() for lock in view.locks.reported()) or "a lock taken meanwhile"
                return [Finding(Severity.INFO, "check_failed",
                                f"The {name} check could not run: {exc}. Locked now: {held}.")]
        except asyncpg.InsufficientPrivilegeError as exc:
            return [Finding(Severity.INFO, "not_visible", f"The {name} check could not run: {exc}. {PRIVILEGE_HINT}")]
        except asyncpg.PostgresError as exc:
            return [Finding(Severity.INFO, "check_failed", f"The {name} check failed: {exc}")]
    raise AssertionError("unreachable: the second attempt returns")

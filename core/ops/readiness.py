"""Whether this replica should be sent work (/readyz): one secret-free line per dependency that does not answer.

Every configured database and the context store (Redis when configured) are asked at once, each within
:data:`CHECK_TIMEOUT_S`, then the chat connection the running adapter reports (core.ops.health). A draining
replica is never ready, so the load balancer (or Kubernetes) stops sending it work while it finishes.
"""

from __future__ import annotations

import asyncio

from core.db.registry import DatabaseRegistry
from core.errors import PgbotError
from core.ops.health import Health
from core.sqlguard import CheckedSql
from core.threads.context import ContextStore

CHECK_TIMEOUT_S = 5.0
READY_PROBE_THREAD = "pgbot:readyz"
DRAINING = "shutting down: finishing work in flight, taking no new messages"


async def readiness_problems(*, draining: bool, databases: DatabaseRegistry, store: ContextStore,
                             health: Health) -> list[str]:
    """What keeps this replica from taking work; empty when it is ready."""
    if draining:
        return [DRAINING]

    async def database(name: str) -> str | None:
        try:
            probe = databases.get(name).fetch(CheckedSql.trusted("SELECT 1"), role=None)
            await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
        except PgbotError as exc:
            return f"database {name}: {exc.user_message}"
        except TimeoutError:
            return f"database {name}: no answer within {CHECK_TIMEOUT_S:g} s"
        return None

    async def context_store() -> str | None:
        try:
            await asyncio.wait_for(store.get_database(READY_PROBE_THREAD), CHECK_TIMEOUT_S)
        except PgbotError as exc:
            return f"context store: {exc.user_message}"
        except TimeoutError:
            return f"context store: no answer within {CHECK_TIMEOUT_S:g} s"
        return None

    results = await asyncio.gather(*(database(n) for n in databases.names), context_store())
    return [line for line in results if line is not None] + await health.problems()

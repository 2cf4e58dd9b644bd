"""What running pgbot for a team adds to every turn: a request id in the logs, metrics, quotas, readiness.

The agent calls four hooks (``begin``, ``admit``, ``llm``, ``Turn.finish``) so its loop stays about
answering; everything here is cheap when the limits are off (no I/O at all) and one Redis round trip per
message when rate limits are on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import structlog

from core.errors import QuotaError
from core.messages import Message, Reply, ReplyKind, new_id
from core.ops.health import Health
from core.ops.metered import MeteredLlm
from core.ops.metrics import OTHER_ERROR, Metrics, PoolUsage, TurnLoad
from core.ops.quotas import MemoryQuotas, QuotaPolicy, Quotas, workspace_key

if TYPE_CHECKING:
    from core.config import Settings
    from core.db.registry import DatabaseRegistry
    from core.llm.base import LlmClient
    from core.threads.limits import TurnLimiter

REQUEST_ID = "request_id"


class Turn:
    """One message's bookkeeping, from arrival to its final reply."""

    __slots__ = ("_metrics", "_started", "request_id")

    def __init__(self, metrics: Metrics, request_id: str) -> None:
        self._metrics = metrics
        self._started = time.perf_counter()
        self.request_id = request_id

    def finish(self, reply: Reply, *, error: BaseException | None = None) -> Reply:
        """Record the final reply (and the error behind it); returns the reply so it can be yielded inline."""
        self._metrics.reply(reply, seconds=time.perf_counter() - self._started)
        if error is not None:
            self._metrics.error(error)
        elif reply.kind is ReplyKind.ERROR:
            self._metrics.errors.labels(OTHER_ERROR).inc()
        return reply

    def close(self) -> None:
        """Stop tagging log lines with this turn's id (idempotent; safe from any context)."""
        structlog.contextvars.unbind_contextvars(REQUEST_ID)


class Ops:
    def __init__(self, *, settings: Settings, metrics: Metrics | None = None, quotas: Quotas | None = None) -> None:
        self.metrics = metrics or Metrics()
        self.quotas: Quotas = quotas or MemoryQuotas(QuotaPolicy.from_settings(settings.limits))
        self.health = Health()
        self.max_tokens = settings.llm.max_tokens  # for the "stopped at max_tokens" error (core.ops.metered)

    def watch(self, *, databases: DatabaseRegistry, limiter: TurnLimiter) -> None:
        """Expose pool usage and turn load as gauges, read when /metrics is scraped."""

        def pools() -> list[PoolUsage]:
            found = []
            for name in databases.names:
                db = databases.get(name)
                usage = db.pool_usage()
                if usage is not None:
                    found.append(PoolUsage(name, usage[0], usage[1], db.settings.pool_max_size))
            return found

        def turns() -> TurnLoad:
            stats = limiter.stats
            return TurnLoad(running=stats.running, waiting=stats.waiting, rejected=stats.rejected)

        self.metrics.watch(pools=pools, turns=turns)

    def begin(self, message: Message) -> Turn:
        """Count the message and tag every log line of this turn (in this task and tasks it starts)."""
        request_id = new_id()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        self.metrics.message(message.platform)
        return Turn(self.metrics, request_id)

    @contextmanager
    def request(self) -> Iterator[str]:
        """A request id for work outside a turn (an approval click), bound to the log lines inside."""
        request_id = new_id()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            yield request_id

    async def admit(self, message: Message) -> None:
        """Rate limits for every message, the token budget for those that will reach the model."""
        try:
            await self.quotas.admit(message, uses_llm=not message.text.lstrip().startswith("/"))
        except QuotaError as exc:
            self.metrics.limit_hit(exc.limit)
            raise

    def llm(self, llm: LlmClient, message: Message) -> MeteredLlm:
        return MeteredLlm(llm, metrics=self.metrics, quotas=self.quotas, workspace=workspace_key(message),
                          max_tokens=self.max_tokens)

    async def aclose(self) -> None:
        await self.quotas.aclose()

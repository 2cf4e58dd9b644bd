"""Build the agent and its parts from settings: the one place that knows every concrete class."""

from __future__ import annotations

import redis.asyncio as aioredis

from core.agent.loop import Agent
from core.approvals.audit import AuditLog
from core.approvals.decisions import Approvals
from core.approvals.store import ApprovalStore, MemoryApprovalStore, RedisApprovalStore
from core.config import Settings
from core.db.registry import DatabaseRegistry
from core.llm.base import LlmClient
from core.ops.hooks import Ops
from core.ops.quotas import MemoryQuotas, QuotaPolicy, Quotas, RedisQuotas
from core.prompt.accuracy import Accuracy
from core.prompt.feedback import AnswerLog, MemoryAnswerLog, RedisAnswerLog
from core.schedules import MemoryRunClaims, RedisRunClaims, RunClaims, Scheduler, Schedules
from core.sqlguard import SqlGuard
from core.threads.context import ContextStore, MemoryContextStore, RedisContextStore
from core.threads.dedupe import EventLog, MemoryEventLog, RedisEventLog
from core.threads.lease import LocalThreadTurns, RedisThreadTurns, ThreadTurns
from core.tools.registry import load_tools


def make_llm(settings: Settings) -> LlmClient | None:
    """An OpenAI-compatible client when a key or a base URL is configured, else None (slash commands only).
    A blank key is already None (``LlmSettings``)."""
    if settings.llm.api_key is None and not settings.llm.base_url:
        return None
    from core.llm.openai_client import OpenAIClient

    return OpenAIClient(settings.llm)


REDIS_TIMEOUT_S = 3.0  # connect and per command: a Redis that stops answering fails the call, never hangs it


class SharedRedis:
    """One connection pool for every Redis-backed part of a bot: thread context, approvals, answers, thread
    turns, events, quotas and schedule claims.

    Each part gets a thin client over the pool (:meth:`client`) and closes it in its own ``aclose``, as if it
    were its own; the pool's connections close once, when the last of those clients is closed, so no part
    closes connections another still uses and shutdown needs no particular order. Replies are read as text
    (``decode_responses``): every store takes ``str`` (the lease's scripts accept either).
    """

    def __init__(self, url: str, *, timeout_s: float = REDIS_TIMEOUT_S) -> None:
        self.pool: aioredis.ConnectionPool = aioredis.ConnectionPool.from_url(
            url, decode_responses=True, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        self.open_clients = 0

    def client(self) -> aioredis.Redis:
        self.open_clients += 1
        return _PoolClient(self)

    async def _client_closed(self) -> None:
        self.open_clients -= 1
        if self.open_clients == 0:
            await self.pool.aclose()


class _PoolClient(aioredis.Redis):
    """A client on the shared pool; closing it hands its share back (once), the last one closes the pool."""

    def __init__(self, shared: SharedRedis) -> None:
        super().__init__(connection_pool=shared.pool)
        self._shared: SharedRedis | None = shared

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool=False)
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared._client_closed()


def shared_redis(settings: Settings) -> SharedRedis | None:
    """The bot's one Redis pool, or None without ``[redis] url`` (everything then lives in this process)."""
    return None if settings.redis.url is None else SharedRedis(settings.redis.url.get_secret_value())


def make_store(settings: Settings, redis: SharedRedis | None) -> ContextStore:
    if redis is None:
        return MemoryContextStore(ttl_s=settings.redis.context_ttl_s, max_turns=settings.context.max_history_turns)
    return RedisContextStore(redis.client(), ttl_s=settings.redis.context_ttl_s,
                             max_turns=settings.context.max_history_turns)


def make_approval_store(redis: SharedRedis | None) -> ApprovalStore:
    """Redis when configured (shared by replicas, survives restarts), else in memory (the terminal)."""
    return MemoryApprovalStore() if redis is None else RedisApprovalStore(redis.client())


def make_answer_log(settings: Settings, redis: SharedRedis | None) -> AnswerLog:
    """Where answers wait for 👍/👎: Redis when configured (any replica takes the click), else memory."""
    ttl_s = settings.redis.context_ttl_s
    return MemoryAnswerLog(ttl_s=ttl_s) if redis is None else RedisAnswerLog(redis.client(), ttl_s=ttl_s)


def make_turns(settings: Settings, redis: SharedRedis | None) -> ThreadTurns:
    """Per-thread order across replicas (a Redis lease) when Redis is configured, else in this process."""
    if redis is None:
        return LocalThreadTurns(max_waiting=settings.limits.queue_per_thread)
    return RedisThreadTurns(redis.client(), lease_s=settings.redis.lease_s,
                            max_waiting=settings.limits.queue_per_thread)


def make_events(settings: Settings, redis: SharedRedis | None) -> EventLog:
    """Where delivered events are claimed once: Redis when configured (shared by replicas), else memory."""
    ttl_s = settings.redis.event_ttl_s
    return MemoryEventLog(ttl_s=ttl_s) if redis is None else RedisEventLog(redis.client(), ttl_s=ttl_s)


def make_quotas(settings: Settings, redis: SharedRedis | None) -> Quotas:
    """Rate limits and the token budget: in Redis when configured (every replica counts together), else memory."""
    policy = QuotaPolicy.from_settings(settings.limits)
    return MemoryQuotas(policy) if redis is None else RedisQuotas(redis.client(), policy)


def make_run_claims(redis: SharedRedis | None) -> RunClaims:
    """Where scheduled runs are claimed once: Redis when configured (every replica), else this process."""
    return MemoryRunClaims() if redis is None else RedisRunClaims(redis.client())


def build_bot(settings: Settings, *, redis: SharedRedis | None = None) -> tuple[Agent, Scheduler | None]:
    """The agent and, for a long-running bot (``pgbot slack`` / ``discord`` / ``chat``), its schedule loop
    (None without schedules), on one Redis pool. Close the scheduler's claims and the agent when done."""
    redis = redis if redis is not None else shared_redis(settings)
    agent = build_agent(settings, redis=redis)
    if agent.schedules is None:
        return agent, None
    return agent, Scheduler(schedules=agent.schedules, claims=make_run_claims(redis))


def build_agent(
    settings: Settings, *, llm: LlmClient | None = None, store: ContextStore | None = None, use_llm: bool = True,
    approval_store: ApprovalStore | None = None, quotas: Quotas | None = None, redis: SharedRedis | None = None,
) -> Agent:
    """Wire an :class:`Agent`; tests pass their own ``llm``/``store``/``approval_store``/``quotas``.

    Every Redis-backed part shares ``redis`` (by default a new pool when ``[redis] url`` is set)."""
    redis = redis if redis is not None else shared_redis(settings)
    databases = DatabaseRegistry(settings)
    store = store or make_store(settings, redis)
    tools = load_tools().without(settings.llm.disabled_tools)
    audit = AuditLog(databases)
    guard = SqlGuard(max_sql_chars=settings.limits.max_sql_chars)
    approvals = Approvals(
        settings=settings, databases=databases, store=approval_store or make_approval_store(redis),
        audit=audit, context=store, executors=tools.executors,
    )
    return Agent(
        settings=settings,
        databases=databases,
        store=store,
        tools=tools,
        llm=llm if llm is not None else (make_llm(settings) if use_llm else None),
        guard=guard,
        approvals=approvals,
        accuracy=Accuracy(settings=settings, answers=make_answer_log(settings, redis)),
        turns=make_turns(settings, redis),
        events=make_events(settings, redis),
        ops=Ops(settings=settings, quotas=quotas or make_quotas(settings, redis)),
        schedules=Schedules(settings=settings, databases=databases, guard=guard, audit=audit),
    )

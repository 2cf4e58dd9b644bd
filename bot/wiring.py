"""Build the agent and its parts from settings: the one place that knows every concrete class."""

from __future__ import annotations

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


def make_store(settings: Settings) -> ContextStore:
    if settings.redis.url is None:
        return MemoryContextStore(ttl_s=settings.redis.context_ttl_s, max_turns=settings.context.max_history_turns)
    return RedisContextStore.from_url(
        settings.redis.url.get_secret_value(),
        ttl_s=settings.redis.context_ttl_s,
        max_turns=settings.context.max_history_turns,
    )


def make_approval_store(settings: Settings) -> ApprovalStore:
    """Redis when configured (shared by replicas, survives restarts), else in memory (the terminal)."""
    if settings.redis.url is None:
        return MemoryApprovalStore()
    return RedisApprovalStore.from_url(settings.redis.url.get_secret_value())


def make_answer_log(settings: Settings) -> AnswerLog:
    """Where answers wait for 👍/👎: Redis when configured (any replica takes the click), else memory."""
    if settings.redis.url is None:
        return MemoryAnswerLog(ttl_s=settings.redis.context_ttl_s)
    return RedisAnswerLog.from_url(settings.redis.url.get_secret_value(), ttl_s=settings.redis.context_ttl_s)


def make_turns(settings: Settings) -> ThreadTurns:
    """Per-thread order across replicas (a Redis lease) when Redis is configured, else in this process."""
    if settings.redis.url is None:
        return LocalThreadTurns(max_waiting=settings.limits.queue_per_thread)
    return RedisThreadTurns.from_url(
        settings.redis.url.get_secret_value(), lease_s=settings.redis.lease_s,
        max_waiting=settings.limits.queue_per_thread,
    )


def make_events(settings: Settings) -> EventLog:
    """Where delivered events are claimed once: Redis when configured (shared by replicas), else memory."""
    if settings.redis.url is None:
        return MemoryEventLog(ttl_s=settings.redis.event_ttl_s)
    return RedisEventLog.from_url(settings.redis.url.get_secret_value(), ttl_s=settings.redis.event_ttl_s)
def make_quotas(settings: Settings) -> Quotas:
    """Rate limits and the token budget: in Redis when configured (every replica counts together), else memory."""
    policy = QuotaPolicy.from_settings(settings.limits)
    if settings.redis.url is None:
        return MemoryQuotas(policy)
    return RedisQuotas.from_url(settings.redis.url.get_secret_value(), policy)


def make_run_claims(settings: Settings) -> RunClaims:
    """Where scheduled runs are claimed once: Redis when configured (every replica), else this process."""
    if settings.redis.url is None:
        return MemoryRunClaims()
    return RedisRunClaims.from_url(settings.redis.url.get_secret_value())


def make_scheduler(agent: Agent) -> Scheduler | None:
    """The schedule loop for a long-running bot (``pgbot slack`` / ``pgbot discord``); None without schedules."""
    if agent.schedules is None:
        return None
    return Scheduler(schedules=agent.schedules, claims=make_run_claims(agent.settings))


def build_agent(
    settings: Settings, *, llm: LlmClient | None = None, store: ContextStore | None = None, use_llm: bool = True,
    approval_store: ApprovalStore | None = None, quotas: Quotas | None = None,
) -> Agent:
    """Wire an :class:`Agent`; tests pass their own ``llm``/``store``/``approval_store``/``quotas``."""
    databases = DatabaseRegistry(settings)
    store = store or make_store(settings)
    tools = load_tools().without(settings.llm.disabled_tools)
    audit = AuditLog(databases)
    guard = SqlGuard(max_sql_chars=settings.limits.max_sql_chars)
    approvals = Approvals(
        settings=settings, databases=databases, store=approval_store or make_approval_store(settings),
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
        accuracy=Accuracy(settings=settings, answers=make_answer_log(settings)),
        turns=make_turns(settings),
        events=make_events(settings),
        ops=Ops(settings=settings, quotas=quotas or make_quotas(settings)),
        schedules=Schedules(settings=settings, databases=databases, guard=guard, audit=audit),
    )

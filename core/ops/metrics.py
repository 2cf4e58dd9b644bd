"""Prometheus metrics for one agent, in its own ``CollectorRegistry``.

Why a registry per agent rather than prometheus_client's global one: tests (and a process embedding two
bots) build several agents, and a global registry refuses the second set of metric names. Updates on the
turn path are plain counter/histogram increments on pre-bound children (a lock and an add, ~1 µs);
gauges that need a look at live state (pools, the turn limiter) are read only when /metrics is scraped.
Label values are bounded: platforms, reply kinds, registered tool names, error class names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.errors import PgbotError
from core.messages import Reply, ReplyKind

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
TOKEN_BUCKETS = (250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000)
UNKNOWN_TOOL = "unknown"
OTHER_ERROR = "other"  # an error reply with no exception behind it (a /sql the guard refused, no model set)


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """One database's asyncpg pool as seen at scrape time."""

    database: str
    size: int
    idle: int
    max_size: int


@dataclass(frozen=True, slots=True)
class TurnLoad:
    running: int
    waiting: int
    rejected: int


class Metrics:
    """The counters and histograms the agent updates; ``watch`` adds scrape-time gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_start_time_seconds, CPU, memory, open fds
        self.messages = Counter("pgbot_messages_received", "Messages received, by platform.", ["platform"],
                                registry=r)
        self.replies = Counter("pgbot_replies", "Final replies, by kind (answer, result, approval, error, ...).",
                               ["kind"], registry=r)
        self.turn_seconds = Histogram("pgbot_turn_duration_seconds",
                                      "Time from receiving a message to its final reply, waits included.",
                                      buckets=TURN_BUCKETS, registry=r)
        self.llm_calls = Counter("pgbot_llm_calls", "Calls to the language model, by outcome (ok or error class).",
                                 ["outcome"], registry=r)
        self.llm_tokens = Counter("pgbot_llm_tokens", "Tokens the model endpoint reported, by type (prompt, "
                                  "completion, cached: prompt tokens the server reused from its cache).", ["type"],
                                  registry=r)
        self.call_prompt_tokens = Histogram("pgbot_llm_call_prompt_tokens", "Prompt tokens per model call.",
                                            buckets=TOKEN_BUCKETS, registry=r)
        self.turn_tokens_total = Histogram("pgbot_turn_llm_tokens",
                                           "Tokens (prompt + completion) of all model calls of one turn.",
                                           buckets=TOKEN_BUCKETS, registry=r)
        self.tool_calls = Counter("pgbot_tool_calls", "Tool calls by the model, by tool and outcome (ok, hint, error).",
                                  ["tool", "outcome"], registry=r)
        self.errors = Counter("pgbot_errors", "Error replies, by kind: the error class, 'internal' for bugs, "
                              "'other' for refusals replied directly (a /sql the guard refused).",
                              ["kind"], registry=r)
        self.approvals = Counter("pgbot_approvals",
                                 "Approval events: requested, approved, rejected, not_run (refused, expired, failed).",
                                 ["outcome"], registry=r)
        self.limited = Counter("pgbot_limited", "Messages refused by a rate limit or the token budget, by limit.",
                               ["limit"], registry=r)
        self._prompt_tokens = self.llm_tokens.labels("prompt")
        self._completion_tokens = self.llm_tokens.labels("completion")
        self._cached_tokens = self.llm_tokens.labels("cached")
        self._llm_ok = self.llm_calls.labels("ok")

    def watch(self, *, pools: Callable[[], Iterable[PoolUsage]], turns: Callable[[], TurnLoad]) -> None:
        """Report pool usage and turn load, read at scrape time from these callables."""
        self.registry.register(_LiveCollector(pools, turns))

    def render(self) -> bytes:
        """The Prometheus text exposition of everything in this registry."""
        return generate_latest(self.registry)

    # -- the turn path: cheap ---------------------------------------------------------------------

    def message(self, platform: str) -> None:
        self.messages.labels(platform).inc()

    def reply(self, reply: Reply, *, seconds: float) -> None:
        self.replies.labels(reply.kind.value).inc()
        self.turn_seconds.observe(seconds)

    def error(self, exc: BaseException) -> None:
        self.errors.labels(error_kind(exc)).inc()

    def llm_call(self, *, error: BaseException | None = None, prompt_tokens: int = 0,
                 completion_tokens: int = 0, cached_tokens: int = 0) -> None:
        if error is None:
            self._llm_ok.inc()
        else:
            self.llm_calls.labels(error_kind(error)).inc()
        if prompt_tokens > 0:
            self._prompt_tokens.inc(prompt_tokens)
            self.call_prompt_tokens.observe(prompt_tokens)
        if completion_tokens > 0:
            self._completion_tokens.inc(completion_tokens)
        if cached_tokens > 0:
            self._cached_tokens.inc(cached_tokens)

    def turn_tokens(self, tokens: int) -> None:
        self.turn_tokens_total.observe(tokens)

    def tool_call(self, tool: str, outcome: str) -> None:
        self.tool_calls.labels(tool, outcome).inc()

    def approval(self, outcome: str) -> None:
        self.approvals.labels(outcome).inc()

    def decision(self, reply: Reply, *, approve: bool) -> None:
        """Count an Approve/Reject click by what came of it."""
        if reply.kind is ReplyKind.OUTCOME:
            self.approval("approved" if approve else "rejected")
        else:
            self.approval("not_run")

    def limit_hit(self, limit: str) -> None:
        self.limited.labels(limit).inc()


def error_kind(exc: BaseException) -> str:
    """A bounded label: the PgbotError subclass name, else 'internal' (a bug or an unexpected library error)."""
    return type(exc).__name__ if isinstance(exc, PgbotError) else "internal"


class _LiveCollector(Collector):
    def __init__(self, pools: Callable[[], Iterable[PoolUsage]], turns: Callable[[], TurnLoad]) -> None:
        self._pools = pools
        self._turns = turns

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        size = GaugeMetricFamily("pgbot_db_pool_connections", "Connections open in the pool.", labels=["database"])
        idle = GaugeMetricFamily("pgbot_db_pool_idle_connections", "Open connections not in use.",
                                 labels=["database"])
        cap = GaugeMetricFamily("pgbot_db_pool_max_connections", "The pool's configured maximum.",
                                labels=["database"])
        for pool in self._pools():
            size.add_metric([pool.database], pool.size)
            idle.add_metric([pool.database], pool.idle)
            cap.add_metric([pool.database], pool.max_size)
        yield from (size, idle, cap)
        load = self._turns()
        yield GaugeMetricFamily("pgbot_turns_running", "Turns running now.", value=load.running)
        yield GaugeMetricFamily("pgbot_turns_queued", "Turns waiting behind the concurrency limits.",
                                value=load.waiting)
        yield CounterMetricFamily("pgbot_turns_rejected", "Turns answered 'busy' because the queue was full.",
                                  value=load.rejected)

"""The model as one turn sees it: every call counted in the log and the metrics, its tokens charged to the
workspace, and a reply cut off at ``[llm] max_tokens`` turned into a clear error instead of half an answer."""

from __future__ import annotations

import json
from collections.abc import Sequence

import structlog

from core.errors import LlmLengthError
from core.llm.base import ChatTurn, Completion, FinishReason, LlmClient, ToolSpec
from core.ops.metrics import Metrics
from core.ops.quotas import Quotas

log = structlog.get_logger(__name__)


def length_error(max_tokens: int) -> LlmLengthError:
    return LlmLengthError(
        f"The model stopped at the max_tokens limit ({max_tokens:,}) before answering; raise [llm] max_tokens "
        "or ask a narrower question."
    )


def cut_off(completion: Completion) -> bool:
    """Whether the model stopped at max_tokens without a usable answer: prose cut mid-way, or a tool call
    whose arguments are not a whole JSON object. Complete tool calls are usable whatever the reason."""
    if completion.finish_reason != FinishReason.LENGTH:
        return False
    if not completion.tool_calls:
        return True
    for call in completion.tool_calls:
        try:
            if not isinstance(json.loads(call.arguments or "{}"), dict):
                return True
        except ValueError:
            return True
    return False


class MeteredLlm:
    """Wraps the agent's client for one turn (cheap: a few references and counters); closing it leaves the
    client open. :meth:`end_turn` logs and records the turn's totals."""

    __slots__ = ("_inner", "_max_tokens", "_metrics", "_quotas", "_workspace", "cached_tokens", "calls",
                 "completion_tokens", "prompt_tokens")

    def __init__(self, inner: LlmClient, *, metrics: Metrics, quotas: Quotas, workspace: str,
                 max_tokens: int) -> None:
        self._inner = inner
        self._metrics = metrics
        self._quotas = quotas
        self._workspace = workspace
        self._max_tokens = max_tokens
        self.calls = self.prompt_tokens = self.completion_tokens = self.cached_tokens = 0

    async def complete(self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> Completion:
        try:
            completion = await self._inner.complete(messages, tools)
        except Exception as exc:
            self._metrics.llm_call(error=exc)
            raise
        usage = completion.usage
        self.calls += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cached_tokens += usage.cached_tokens
        error = length_error(self._max_tokens) if cut_off(completion) else None
        self._metrics.llm_call(error=error, prompt_tokens=usage.prompt_tokens,
                               completion_tokens=usage.completion_tokens, cached_tokens=usage.cached_tokens)
        log.info("llm_call", prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                 cached_tokens=usage.cached_tokens, finish_reason=completion.finish_reason, tools=len(tools),
                 messages=len(messages))
        await self._quotas.spend(self._workspace, usage.prompt_tokens + usage.completion_tokens)
        if error is not None:
            raise error
        return completion

    def end_turn(self) -> None:
        """Log the turn's token totals and add them to the per-turn histogram (no model call: nothing)."""
        if not self.calls:
            return
        self._metrics.turn_tokens(self.prompt_tokens + self.completion_tokens)
        log.info("llm_turn", calls=self.calls, prompt_tokens=self.prompt_tokens,
                 completion_tokens=self.completion_tokens, cached_tokens=self.cached_tokens)

    async def aclose(self) -> None:
        return None  # the agent owns the wrapped client

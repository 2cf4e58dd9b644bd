"""The model as one turn sees it: every call counted in the metrics, its tokens charged to the workspace."""

from __future__ import annotations

from collections.abc import Sequence

from core.llm.base import ChatTurn, Completion, LlmClient, ToolSpec
from core.metrics import Metrics
from core.quotas import Quotas


class MeteredLlm:
    """Wraps the agent's client for one turn (cheap: three references); closing it leaves the client open."""

    __slots__ = ("_inner", "_metrics", "_quotas", "_workspace")

    def __init__(self, inner: LlmClient, *, metrics: Metrics, quotas: Quotas, workspace: str) -> None:
        self._inner = inner
        self._metrics = metrics
        self._quotas = quotas
        self._workspace = workspace

    async def complete(self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> Completion:
        try:
            completion = await self._inner.complete(messages, tools)
        except Exception as exc:
            self._metrics.llm_call(error=exc)
            raise
        usage = completion.usage
        self._metrics.llm_call(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        await self._quotas.spend(self._workspace, usage.prompt_tokens + usage.completion_tokens)
        return completion

    async def aclose(self) -> None:
        return None  # the agent owns the wrapped client

"""What slash commands and answer buttons may use of the agent: :class:`CommandHost`, so they need not import
the loop (which imports them).

Today it names the agent's parts they reach into; the narrower host of issue 15, item 3 replaces these with
a few methods without touching the loop's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.approvals.decisions import Approvals
    from core.config import Settings
    from core.db.registry import DatabaseRegistry
    from core.messages import Reply
    from core.ops.hooks import Ops
    from core.prompt.accuracy import Accuracy
    from core.schedules.service import Schedules
    from core.sqlguard import SqlGuard
    from core.threads.context import ContextStore
    from core.threads.limits import TurnLimiter
    from core.tools.registry import ToolContext, ToolOutput, ToolRegistry


class CommandHost(Protocol):
    """The :class:`core.agent.loop.Agent` as slash commands and answer buttons see it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def databases(self) -> DatabaseRegistry: ...

    @property
    def store(self) -> ContextStore: ...

    @property
    def limiter(self) -> TurnLimiter: ...

    @property
    def tools(self) -> ToolRegistry: ...

    @property
    def guard(self) -> SqlGuard: ...

    @property
    def accuracy(self) -> Accuracy: ...

    @property
    def approvals(self) -> Approvals | None: ...

    @property
    def schedules(self) -> Schedules | None: ...

    @property
    def ops(self) -> Ops: ...

    async def pending_reply(self, ctx: ToolContext, output: ToolOutput) -> Reply: ...

    async def feedback(self, *, answer_id: str, user: str, helpful: bool, groups: tuple[str, ...] = ()) -> Reply: ...

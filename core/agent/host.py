"""What slash commands and answer buttons may do with the agent: :class:`CommandHost`, so they need not import
the loop (which imports them).

Commands get verbs, not the agent's parts: run a tool as a person (the same guard and role as the model's
calls), ask the guard what a statement is, build a context for another person or database, propose a change
for approval, look up or keep an answer's record, take a slot under the concurrency limits. The tool registry,
the guard, the context store, the limiter, the accuracy layer and the metrics stay inside the agent.

Four read-only properties remain, each because a command works on that thing as a whole:

* ``settings``: the undo of a change expires with the change's undo window or the approval expiry;
* ``databases``: an Undo click searches every configured database for the change's kept rows and audit;
* ``approvals``: an Undo click asks whether an earlier undo of the same change still waits or runs;
* ``schedules``: the schedule commands are that service's chat interface (list, create, pause, delete).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.approvals.decisions import Approvals
    from core.approvals.pending import PendingAction
    from core.config import Settings
    from core.db.registry import DatabaseRegistry
    from core.messages import ApprovalPrompt, Reply
    from core.prompt.feedback import AnswerRecord
    from core.schedules.service import Schedules
    from core.sqlguard import Classification
    from core.tools.registry import ToolContext, ToolOutput


class CommandHost(Protocol):
    """The :class:`core.agent.loop.Agent` as slash commands and answer buttons see it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def databases(self) -> DatabaseRegistry: ...

    @property
    def approvals(self) -> Approvals | None: ...

    @property
    def schedules(self) -> Schedules | None: ...

    def context_for(self, *, database: str, identity: str, groups: tuple[str, ...], thread_key: str,
                    question: str = "", tags: Mapping[str, str] | None = None) -> ToolContext:
        """A tool context for ``identity`` on ``database``, under their own mapped role (AccessDeniedError when
        they have none there); ``tags`` are added to its log lines."""
        ...

    async def run_tool(self, ctx: ToolContext, name: str, arguments: dict[str, object]) -> ToolOutput:
        """Run the tool a person's command names (``[llm] disabled_tools`` withholds it from the model only)."""
        ...

    def classify_sql(self, sql: str) -> Classification:
        """What the guard says ``sql`` is (GuardError when it cannot be parsed)."""
        ...

    def needs_approval(self, sql: str) -> bool:
        """Whether a person's SQL goes to approval instead of running: changes are on, and it is not a read."""
        ...

    async def pending_reply(self, ctx: ToolContext, output: ToolOutput) -> Reply:
        """Store the change a tool proposed and return its Approve / Reject card."""
        ...

    async def submit_change(self, action: PendingAction) -> ApprovalPrompt:
        """Store a change built outside the tools (an undo) for approval; returns what approvers see."""
        ...

    async def last_answer(self, thread_key: str) -> AnswerRecord | None:
        """The record of the thread's last answer, if one is remembered."""
        ...

    async def recall_answer(self, answer_id: str) -> AnswerRecord | None:
        """The record behind an answer's buttons, or None once forgotten."""
        ...

    async def remember_answer(self, record: AnswerRecord) -> None:
        """Keep a new answer's record for its buttons and 👍/👎."""
        ...

    def turn_slot(self, *, user: str, database: str) -> AbstractAsyncContextManager[None]:
        """A place under the concurrency limits for work outside a turn (a click that runs a query)."""
        ...

    async def feedback(self, *, answer_id: str, user: str, helpful: bool, groups: tuple[str, ...] = ()) -> Reply:
        """Record a 👍/👎 on an answer."""
        ...

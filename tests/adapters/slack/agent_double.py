"""TEST DOUBLE for core.Agent, used by the Slack and Discord adapter tests.

For adapter-only checks where the exact reply matters more than how core produced it (a fixed approval
prompt, recorded clicks, a runner that fails before it uses the agent): it keeps core's contract (WORKING
first, then one final reply; ``decide`` returns an OUTCOME or ERROR reply) and records what the adapter
passed in. Whole flows use the real Agent (tests/adapters/slack/test_app.py, tests/adapters/discord/).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from core import ApprovalPrompt, Message, Reply, ReplyKind, ResultTable, Settings
from core.approvals.decisions import Started
from core.approvals.executors import ProgressSink
from core.card_state import Approvers, CardState, CardStatus
from core.ops.health import Health
from core.permissions import GroupLookup

ACTION_ID = "a1b2c3d4e5f6"
ANSWER_ID = "0a1b2c3d4e5f"
CHANGE_SQL = "UPDATE orders SET status = 'cancelled' WHERE id = 42"


def approval_reply() -> Reply:
    prompt = ApprovalPrompt(
        action_id=ACTION_ID, database="shop", role="analyst", requested_by="slack:U0USER0001", sql=CHANGE_SQL,
        sql_hash="f" * 64, kind="write", summary="Cancel order 42 (1 row)",
        preview=ResultTable(columns=("id", "status"), rows=((42, "cancelled"),)), expires_at=time.time() + 3600,
        question="Approve: UPDATE 1 row in orders?", diff=("id 42: status pending → cancelled",),
        details=("This UPDATE on orders would affect 1 row.",),
        approvers=Approvers(people=("slack:U0APPROVER", "discord:1200000000000000006"), roles=("dba",)),
    )
    return Reply(kind=ReplyKind.APPROVAL, text="This change needs approval.", sql=(CHANGE_SQL,),
                 table=prompt.preview, approval=prompt, database="shop")


@dataclass
class ApprovalAgentDouble:
    """Answers every message with an approval request (or ``answers`` in order), and records clicks."""

    answers: list[Reply] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    decisions: list[tuple[str, str, bool]] = field(default_factory=list)
    feedbacks: list[tuple[str, str, bool]] = field(default_factory=list)
    decide_kind: ReplyKind = ReplyKind.OUTCOME
    progress_lines: list[str] = field(default_factory=list)  # reported through ``progress`` before the outcome
    schedules: None = None  # no schedules: the adapter registers no sender on it
    progress_pause_s: float = 0.0  # between progress lines (long work)

    async def handle(self, message: Message) -> AsyncIterator[Reply]:
        self.messages.append(message)
        yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
        yield self.answers.pop(0) if self.answers else approval_reply()

    async def decide(self, *, action_id: str, decided_by: str, approve: bool,
                     progress: ProgressSink | None = None, groups: tuple[str, ...] = (),
                     current_groups: GroupLookup | None = None, started: Started | None = None) -> Reply:
        self.decisions.append((action_id, decided_by, approve))
        if self.decide_kind is ReplyKind.ERROR:
            return Reply(kind=ReplyKind.ERROR, text=f"You ({decided_by}) may not approve changes on shop.",
                         mentions=(decided_by,))
        if approve and started is not None:
            await started()
        for line in self.progress_lines:
            assert progress is not None, "the adapter passed no progress sink"
            await progress(line)
            await asyncio.sleep(self.progress_pause_s)
        verb = "Approved" if approve else "Rejected"
        card = CardState(status=CardStatus.APPLIED if approve else CardStatus.REJECTED, by=decided_by,
                         at=time.time(), detail="UPDATE 1", duration_ms=12)
        return Reply(kind=ReplyKind.OUTCOME, text=f"{verb} by {decided_by}: 1 row updated.", sql=(CHANGE_SQL,),
                     database="shop", card=card, mentions=(decided_by,))

    async def feedback(self, *, answer_id: str, user: str, helpful: bool, groups: tuple[str, ...] = ()) -> Reply:
        self.feedbacks.append((answer_id, user, helpful))
        return Reply(kind=ReplyKind.INFO, text="Thanks, noted.")


class HeldDouble(ApprovalAgentDouble):
    """TEST DOUBLE: an answer and a decision that wait until the test releases them (a handler still running)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def handle(self, message: Message) -> AsyncIterator[Reply]:
        async for reply in super().handle(message):
            if reply.kind is not ReplyKind.WORKING:
                await self.release.wait()
            yield reply

    async def decide(self, *, action_id: str, decided_by: str, approve: bool, **more: Any) -> Reply:
        await self.release.wait()
        return await super().decide(action_id=action_id, decided_by=decided_by, approve=approve, **more)


@dataclass
class IdleAgentDouble:
    """TEST DOUBLE handed to runners whose start-up fails (missing tokens) before they use the agent."""

    def __init__(self) -> None:
        self.health = Health()  # the runner reports its connection here (real class: core has no SDK)
        self.settings = Settings()  # runners read [chat] from it
        self.schedules = None  # no schedules: the runner registers no sender

    async def handle(self, message: Message) -> AsyncIterator[Reply]:
        yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
        yield Reply(kind=ReplyKind.ANSWER, text="42", answer_id=ANSWER_ID)

    async def decide(self, *, action_id: str, decided_by: str, approve: bool,
                     progress: ProgressSink | None = None, groups: tuple[str, ...] = (),
                     current_groups: GroupLookup | None = None) -> Reply:
        return Reply(kind=ReplyKind.ERROR, text="not used")

"""The agent: one message in, replies out. The single way adapters reach core.

``handle`` posts a "working" reply at once, then either runs a slash command (no model needed) or a model turn
(core.agent.model_turn: the model calls tools until it answers, within a step limit); everything that goes
wrong ends the turn with one clear error reply. Messages in one thread are handled strictly in order, across
replicas too; different threads run concurrently. A redelivered event is handled once; on shutdown, work in
flight finishes or is cancelled with a reply (``drain``). Slash commands and answer buttons reach the agent
through :class:`core.agent.host.CommandHost`, whose methods are implemented here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, aclosing
from typing import TYPE_CHECKING

import structlog

from core.agent import answer_actions, edit_actions
from core.agent.chart_actions import chart_answer
from core.agent.commands import run_command
from core.agent.model_turn import ModelTurn, TurnParts, read_scope
from core.agent.render import render_error
from core.agent.schedule_commands import plain_command
from core.agent.undo_actions import request_undo
from core.approvals.executors import ProgressSink
from core.approvals.pending import PendingAction
from core.card_state import CardState
from core.cards import for_people
from core.config import Settings
from core.db.registry import DatabaseRegistry
from core.errors import BusyError, ModelHint, PgbotError
from core.llm.base import ChatTurn, LlmClient
from core.messages import ApprovalPrompt, Message, Reply, ReplyKind
from core.ops.health import Health
from core.ops.hooks import Ops, Turn
from core.ops.readiness import readiness_problems
from core.permissions import GroupLookup, resolve_role
from core.prompt.accuracy import Accuracy
from core.prompt.feedback import AnswerRecord
from core.prompt.schema_context import SchemaContext
from core.sqlguard import Classification, SqlGuard, StatementKind
from core.threads.context import ContextStore
from core.threads.dedupe import EventLog, MemoryEventLog
from core.threads.inflight import LEASE_LOST, NOT_TAKEN, InFlight
from core.threads.lease import LocalThreadTurns, ThreadTurns, TurnTicket
from core.threads.limits import TurnLimiter
from core.threads.turn_status import TurnStatus, TurnStatuses, bind, cancel_turn, command_phase, report_phase
from core.tools.format import table_for_model
from core.tools.registry import ToolContext, ToolOutput, ToolRegistry
from core.tools.toolsets import ToolSets

if TYPE_CHECKING:
    from core.approvals.decisions import Approvals, Started
    from core.schedules.service import Change, Schedules

log = structlog.get_logger(__name__)

NO_LLM_MESSAGE = (
    "No language model is configured, so pgbot cannot answer in plain English yet. Set OPENAI_API_KEY, "
    "or set [llm] base_url (and model) in pgbot.toml to any OpenAI-compatible endpoint such as Ollama "
    "(http://127.0.0.1:11434/v1). Slash commands work without a model: /tables, /describe T, /sql SELECT …, "
    "/db NAME, /help."
)

ABANDONED = (
    "An earlier message in this thread may not have been answered: the pgbot replica handling it stopped or "
    "lost contact with Redis. If you got no answer to it, please send it again."
)
CLICK_NOT_TAKEN = "pgbot is restarting and did not take this click; nothing was run. Please click again in a moment."
HANDOFF_S = 1.0  # while draining, how long a new event waits for another replica to claim it


class Agent:
    def __init__(
        self,
        *,
        settings: Settings,
        databases: DatabaseRegistry,
        store: ContextStore,
        tools: ToolRegistry,
        llm: LlmClient | None,
        guard: SqlGuard | None = None,
        schema: SchemaContext | None = None,
        approvals: Approvals | None = None,
        accuracy: Accuracy | None = None,
        turns: ThreadTurns | None = None,
        events: EventLog | None = None,
        ops: Ops | None = None,
        schedules: Schedules | None = None,
    ) -> None:
        self.settings = settings
        self.databases = databases
        self.store = store
        self.tools = tools
        self.llm = llm
        self.guard = guard or SqlGuard()
        self.schema = schema or SchemaContext()
        self.approvals = approvals
        self.accuracy = accuracy or Accuracy(settings=settings)
        self.turns = turns or LocalThreadTurns(max_waiting=settings.limits.queue_per_thread)
        self.events = events or MemoryEventLog(ttl_s=settings.redis.event_ttl_s)
        self.inflight = InFlight()
        self.statuses = TurnStatuses()  # turns in flight here: phase and who may cancel (threads.turn_status)
        self.limiter = TurnLimiter.from_settings(settings)
        self.ops = ops or Ops(settings=settings)  # request ids, metrics, quotas, chat readiness (core.ops.hooks)
        self.toolsets = ToolSets.build(tools, clarify=settings.accuracy.clarifying_questions,
                                       databases=len(databases.names))  # core.tools.toolsets
        self.ops.watch(databases=databases, limiter=self.limiter)
        self.schedules = schedules  # scheduled reports and health checks; adapters register senders on it
        self._turn_parts = TurnParts(settings=settings, tools=tools, schema=self.schema, toolsets=self.toolsets,
                                     accuracy=self.accuracy, store=store, metrics=self.ops.metrics, host=self)

    async def handle(self, message: Message) -> AsyncGenerator[Reply, None]:
        """Answer one message; the first reply is always WORKING so adapters can post it at once.

        The message takes its place in its thread's line before anything is awaited, so arrival order is
        kept (across replicas when Redis is configured: core.threads.lease); a full line, or a turn over the
        concurrency limits (core.threads.limits), gets a BusyError reply: every message is answered, none is dropped.
        A redelivered event (same ``event_id``) gets no reply and runs nothing. Cancelling the consumer
        cancels the running query; so does :meth:`drain` at the end of its grace period, with a reply.
        """
        turn = self.ops.begin(message)
        try:
            with self.inflight.opened():
                replies = self._not_taken(message) if self.inflight.closing else self._in_line(message, turn)
                async with aclosing(replies):  # a consumer that stops early releases the thread's line at once
                    async for reply in replies:
                        yield reply
        finally:
            turn.close()

    async def _in_line(self, message: Message, turn: Turn) -> AsyncGenerator[Reply, None]:
        """Take the message's place in its thread's line (nothing awaited before), then run it as a task of its
        own that Cancel, a lost lease or a drain can stop by the turn's id."""
        status = self.statuses.open(asker=message.identity, thread_key=message.thread_key)
        try:
            ticket = self.turns.enter(message.thread_key, on_lost=lambda: self.inflight.stop(status.turn_id,
                                                                                             LEASE_LOST))
        except BusyError as exc:
            self.statuses.close(status)
            for reply in _refused(turn, exc):
                yield reply
            return
        try:
            ended = await self._arrive(message, ticket, turn)
            for reply in ended or ():
                yield reply
            if ended is not None:
                return
            yield Reply(kind=ReplyKind.WORKING, text="Working on it…", turn_id=status.turn_id)
            for reply in await self.inflight.run(status.turn_id, self._turn(message, ticket, turn, status)):
                yield reply
        finally:
            self.statuses.close(status)
            await ticket.release()

    async def _arrive(self, message: Message, ticket: TurnTicket, turn: Turn) -> list[Reply] | None:
        """None when the message goes on to its turn; else what ends it here: nothing for a redelivered event,
        an error when the line could not be joined (Redis down)."""
        try:
            if not await self._first_delivery(message):
                return []
            await ticket.arrive()
        except PgbotError as exc:
            return _refused(turn, exc)
        return None

    async def _first_delivery(self, message: Message) -> bool:
        if message.event_id is None or await self.events.first_time(message.platform, message.event_id):
            return True
        log.info("duplicate_event_ignored", platform=message.platform, event_id=message.event_id,
                 thread=message.thread_key)
        return False

    async def _not_taken(self, message: Message) -> AsyncGenerator[Reply, None]:
        """While draining: leave the event to another replica if one claims it soon, else say to resend."""
        if message.event_id is not None:
            await asyncio.sleep(HANDOFF_S)
            try:
                if not await self._first_delivery(message):
                    return
            except PgbotError as exc:
                log.warning("handoff_claim_failed", error=exc.user_message)
        log.info("message_not_taken_while_draining", thread=message.thread_key)
        yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
        yield Reply(kind=ReplyKind.ERROR, text=NOT_TAKEN)

    async def _turn(self, message: Message, ticket: TurnTicket, turn: Turn, status: TurnStatus) -> list[Reply]:
        """Wait for the thread's turn, then run the message; one final reply (after a notice, if an earlier
        message of the thread was lost with a dead replica)."""
        database: str | None = None
        notices: list[Reply] = []
        error: BaseException | None = None
        bind(status)  # this task's own context: phases reported below reach this turn's line only
        try:
            report_phase("waiting for the earlier question in this thread")
            await ticket.wait()
            if ticket.abandoned:
                notices.append(Reply(kind=ReplyKind.INFO, text=ABANDONED))
            await self.ops.admit(message)
            ctx, history = await self._context(message)
            database = ctx.database.name
            async with self.limiter.slot(user=message.identity, database=database):
                reply = await self._respond(message, ctx, history)
        except (PgbotError, ModelHint) as exc:
            error = exc if isinstance(exc, PgbotError) else PgbotError(exc.hint)
            reply = render_error(error, database=database)
        except Exception as exc:  # noqa: BLE001 - the error policy: log it, show the turn's id
            error = exc
            reply = render_error(exc, database=database, error_id=turn.request_id)
        return [*notices, turn.finish(reply, error=error)]

    @property
    def health(self) -> Health:
        """Where the running adapter reports its chat connection for /readyz (``report_chat``)."""
        return self.ops.health

    async def readiness(self) -> list[str]:
        """What keeps this replica from taking work (/readyz), one secret-free line each; empty when ready."""
        return await readiness_problems(draining=self.inflight.closing, databases=self.databases, store=self.store,
                                        health=self.ops.health)

    def metrics_text(self) -> bytes:
        """This agent's Prometheus metrics in the text exposition format (/metrics)."""
        return self.ops.metrics.render()

    def begin_shutdown(self) -> None:
        """Take no new messages or clicks from now on (they are told to resend); work in flight goes on."""
        self.inflight.closing = True

    async def drain(self, *, grace_s: float) -> int:
        """Let turns in flight finish within ``grace_s``; cancel the rest (their queries too) and tell their
        threads. Call :meth:`aclose` afterwards. Returns how many turns were cancelled."""
        stopped = await self.inflight.drain(grace_s=grace_s)
        log.info("agent_drained", cancelled=stopped, still_open=self.inflight.open)
        return stopped

    async def _context(self, message: Message) -> tuple[ToolContext, list[ChatTurn]]:
        """The turn's context and the thread's history (read together: one context-store round trip)."""
        limit = self.settings.llm.max_question_chars
        if len(message.text) > limit:
            raise PgbotError(f"Your message is {len(message.text):,} characters; pgbot accepts up to {limit:,}.")
        name, history = await self.store.load(message.thread_key)
        if name not in self.databases.names:  # never chosen, or removed from the config since
            name = self.databases.default
        if name is None:
            raise PgbotError("No database is configured. Add a [databases.NAME] section with a dsn to pgbot.toml.")
        ctx = self.context_for(database=name, identity=message.identity, groups=message.groups,
                               thread_key=message.thread_key, question=message.text)
        # Another role's results come back withheld (core.threads.history_scope); questions and SQL stay.
        return ctx, history.visible_to(read_scope(ctx))

    async def _respond(self, message: Message, ctx: ToolContext, history: list[ChatTurn]) -> Reply:
        text = plain_command(message.text) or message.text.strip()
        if message.edit_of is not None:  # an "Edit SQL" submission: SQL, never a command or a question
            return await edit_actions.run_edit(self, message)
        if text.startswith("/"):
            report_phase(command_phase(text, database=ctx.database.name))
            reply = await run_command(self, ctx, text)
            await self._remember_command(ctx, text, reply)
            return reply
        if self.llm is None:
            return Reply(kind=ReplyKind.ERROR, text=NO_LLM_MESSAGE, database=ctx.database.name)
        llm = self.ops.llm(self.llm, message)
        try:
            return await ModelTurn(self._turn_parts, ctx=ctx, llm=llm, question=text, history=history).run()
        finally:
            llm.end_turn()

    async def _remember_command(self, ctx: ToolContext, text: str, reply: Reply) -> None:
        """Slash commands join the thread's history: a follow-up question can build on a /sql result, and
        any replica can tell the thread is a pgbot conversation (``in_conversation``)."""
        summary = reply.text
        if reply.sql:
            summary += "\nSQL: " + "\n".join(reply.sql)
        if reply.table is not None:
            summary += "\n" + table_for_model(reply.table, max_rows=20, max_chars=2000)
        read_as = (read_scope(ctx),)
        await self.store.append(ctx.thread_key, [ChatTurn(role="user", content=text, read_as=read_as),
                                                 ChatTurn(role="assistant", content=summary, read_as=read_as)])

    async def use_database(self, thread_key: str, name: str) -> None:
        """Start a thread on database ``name`` (``pgbot chat --db NAME``); UnknownDatabaseError names the
        configured ones."""
        self.databases.get(name)
        await self.store.set_database(thread_key, name)

    async def in_conversation(self, thread_key: str) -> bool:
        """Whether pgbot has talked in this thread (shared through the context store, so every replica and a
        restarted bot agree); adapters use it to answer thread replies that do not mention pgbot."""
        return await self.store.has_history(thread_key)

    # -- CommandHost: what slash commands and answer buttons may do (core.agent.host) -------------------------

    def context_for(self, *, database: str, identity: str, groups: tuple[str, ...], thread_key: str,
                    question: str = "", tags: Mapping[str, str] | None = None) -> ToolContext:
        """A tool context for ``identity`` on ``database`` under their own mapped role (AccessDeniedError when
        they have none there); ``tags`` are added to its log lines."""
        db = self.databases.get(database)
        actor = resolve_role(database=database, settings=db.settings, identity=identity, groups=groups)
        return ToolContext(
            settings=self.settings, databases=self.databases, database=db, actor=actor, thread_key=thread_key,
            store=self.store, guard=self.guard, question=question,
            log=log.bind(thread=thread_key, user=identity, database=database, **(tags or {})),
        )

    async def run_tool(self, ctx: ToolContext, name: str, arguments: dict[str, object]) -> ToolOutput:
        """Run the tool a person's command names, as ``ctx``'s role (core.tools.registry.ToolRegistry.for_command)."""
        return await self.tools.for_command(name).call(ctx, arguments)

    def classify_sql(self, sql: str) -> Classification:
        return self.guard.classify(sql)

    def needs_approval(self, sql: str) -> bool:
        """Whether a person's SQL goes to approval instead of running: changes are on, and it is not a read."""
        return edit_actions.CHANGE_TOOL in self.tools and self.guard.classify(sql).kind is not StatementKind.READ

    async def submit_change(self, action: PendingAction) -> ApprovalPrompt:
        if self.approvals is None:
            raise PgbotError("Changes are not enabled in this pgbot.")
        prompt = await self.approvals.submit(action)
        self.ops.metrics.approval("requested")
        return prompt

    async def last_answer(self, thread_key: str) -> AnswerRecord | None:
        return await self.accuracy.answers.last_in_thread(thread_key)

    async def recall_answer(self, answer_id: str) -> AnswerRecord | None:
        return await self.accuracy.answers.recall(answer_id)

    async def remember_answer(self, record: AnswerRecord) -> None:
        await self.accuracy.remember(record)

    def turn_slot(self, *, user: str, database: str) -> AbstractAsyncContextManager[None]:
        return self.limiter.slot(user=user, database=database)

    async def pending_reply(self, ctx: ToolContext, output: ToolOutput) -> Reply:
        """Store the change a tool proposed (its pause) and return the message that shows it with Approve / Reject."""
        if not isinstance(output.pause, PendingAction) or self.approvals is None:
            raise PgbotError("Changes are not enabled in this pgbot.")
        prompt, text = for_people(await self.submit_change(output.pause), model_text=output.text)
        return Reply(
            kind=ReplyKind.APPROVAL, text=text, sql=(prompt.sql,), table=prompt.preview, approval=prompt,
            database=prompt.database, mentions=(prompt.requested_by,),
        )

    async def decide(
        self, *, action_id: str, decided_by: str, approve: bool, progress: ProgressSink | None = None,
        groups: tuple[str, ...] = (), current_groups: GroupLookup | None = None, started: Started | None = None,
    ) -> Reply:
        """An Approve/Reject click from any adapter: (action id, deciding identity, decision) → outcome.

        The outcome's ``card`` is where the approval card now stands (None: a refusal for the clicker alone);
        ``started`` is awaited when an approval has won and its change is about to run.

        ``progress`` (optional) receives progress lines of long approved work, for the adapter to post;
        ``groups`` are the clicker's platform groups (as on :class:`Message`), for approvers by role;
        ``current_groups`` looks up the requester's groups at approval (see :class:`GroupLookup`)."""
        if self.approvals is None:
            return Reply(kind=ReplyKind.ERROR, text="Changes are not enabled in this pgbot.")
        if self.inflight.closing:  # nothing was claimed: the same click works again on a running replica
            return Reply(kind=ReplyKind.ERROR, text=CLICK_NOT_TAKEN)
        with self.inflight.opened(), self.ops.request() as request_id:  # a drain waits for a decision
            try:
                reply = await self.approvals.decide(action_id=action_id, decided_by=decided_by, approve=approve,
                                                    progress=progress, decider_groups=groups,
                                                    current_groups=current_groups, started=started)
            except Exception as exc:  # noqa: BLE001 - the error policy: one reply, traceback logged
                reply = render_error(exc, error_id=request_id)
        self.ops.metrics.decision(reply, approve=approve)
        return reply

    def turn_status(self, turn_id: str) -> TurnStatus | None:
        """The turn a WORKING reply named (``Reply.turn_id``), while it runs in this process."""
        return self.statuses.get(turn_id)

    def cancel_turn(self, *, turn_id: str, user: str) -> Reply:
        """A Cancel click: only the person who asked may stop their turn; its running query is cancelled on
        the server and the turn ends with a reply saying nothing was changed."""
        return cancel_turn(self, turn_id=turn_id, user=user)

    async def expire_card(self, action_id: str) -> CardState | None:
        """The adapters' sweep of approval cards past their expiry: expired now (audited once, whichever replica
        or click gets there first), or None when there is nothing to change on the card."""
        if self.approvals is None:
            return None
        try:
            return await self.approvals.expire_due(action_id)
        except PgbotError as exc:  # Redis or the audit table down: the next sweep, or a click, tries again
            log.warning("card_expiry_failed", action_id=action_id, error=exc.user_message)
            return None

    async def show_sql(self, *, answer_id: str, thread_key: str | None = None) -> Reply:
        """A "Show SQL" click: the answer's statements, pretty-printed (``thread_key``: where the button is;
        a record of another thread is refused)."""
        try:
            return await answer_actions.show_sql(self, answer_id=answer_id, thread_key=thread_key)
        except Exception as exc:  # noqa: BLE001 - the error policy: one reply, traceback logged
            return render_error(exc)

    async def export_answer(
        self, *, answer_id: str, user: str, groups: tuple[str, ...] = (), thread_key: str | None = None
    ) -> Reply:
        """An "Export all rows (CSV)" click: the answer's table statement again, as ``user``'s own role (with
        their platform ``groups``), guarded and limited like any read; the reply's ``export`` names the file."""
        return await self._click(lambda: answer_actions.export_answer(
            self, answer_id=answer_id, identity=user, groups=groups, thread_key=thread_key))

    async def edit_source(
        self, *, thread_key: str, user: str, groups: tuple[str, ...] = (), answer_id: str | None = None
    ) -> edit_actions.EditSource:
        """What an "Edit SQL" window starts from: answer ``answer_id`` of ``thread_key`` (None: the thread's last
        answer). Raises PgbotError (another thread's answer, no SQL, ``user`` has no role there)."""
        return await edit_actions.edit_source(self, answer_id=answer_id, thread_key=thread_key, identity=user,
                                              groups=groups)

    def check_edit(self, sql: str, *, max_chars: int) -> str | None:
        """Why an edit window's text cannot be submitted (said in the window), or None; see core.agent.edit_actions."""
        return edit_actions.check_edit(self, sql, max_chars=max_chars)

    async def feedback(self, *, answer_id: str, user: str, helpful: bool, groups: tuple[str, ...] = ()) -> Reply:
        """👍/👎 from any adapter: (answer id from ``Reply.answer_id``, voting identity, vote) → a short reply;
        ``groups`` are the voter's platform groups (as on :class:`Message`)."""
        try:
            return await self.accuracy.feedback(
                databases=self.databases, answer_id=answer_id, user=user, helpful=helpful, groups=groups
            )
        except Exception as exc:  # noqa: BLE001 - the error policy: one reply, traceback logged
            return render_error(exc)

    async def chart_answer(
        self, *, answer_id: str, user: str, groups: tuple[str, ...] = (), thread_key: str | None = None
    ) -> Reply:
        """A "Chart" click from any adapter: the answer's query again as ``user``'s own role (with their
        platform ``groups``), drawn; ``thread_key``: where the button is (another thread's answer is refused)."""
        return await self._click(lambda: chart_answer(self, answer_id=answer_id, identity=user, groups=groups,
                                                      thread_key=thread_key))

    async def schedule_action(self, *, schedule_id: str, action: Change, user: str,
                              groups: tuple[str, ...] = ()) -> Reply:
        """Pause / Resume / Delete on a schedule from any adapter's button: (schedule id, clicking identity,
        action) → a short reply; only the creator or an approver of its database may (core.schedules)."""
        if self.schedules is None:
            return Reply(kind=ReplyKind.ERROR, text="Schedules are not enabled in this pgbot.")
        try:
            return await self.schedules.change(schedule_id, action, by=user, groups=groups)
        except Exception as exc:  # noqa: BLE001 - the error policy: one reply, traceback logged
            return render_error(exc)

    async def undo(
        self, *, action_id: str, user: str, groups: tuple[str, ...] = (), thread_key: str | None = None
    ) -> Reply:
        """An "Undo" click on an approved change's outcome (core.undo): its inverse as a new pending change
        (an APPROVAL reply to post in the thread), or why not (for the clicker)."""
        return await self._click(lambda: request_undo(self, action_id=action_id, identity=user, groups=groups,
                                                      thread_key=thread_key))

    async def _click(self, work: Callable[[], Awaitable[Reply]]) -> Reply:
        """A click that runs work (a query, a proposal): refused while draining, when nothing was claimed yet so
        the same click works on a running replica; a drain waits for it; any failure becomes one reply."""
        if self.inflight.closing:
            return Reply(kind=ReplyKind.ERROR, text=CLICK_NOT_TAKEN)
        with self.inflight.opened(), self.ops.request() as request_id:
            try:
                return await work()
            except Exception as exc:  # noqa: BLE001 - the error policy: one reply, traceback logged
                return render_error(exc, error_id=request_id)

    async def aclose(self) -> None:
        await self.turns.aclose()
        await self.events.aclose()
        await self.databases.aclose()
        await self.store.aclose()
        await self.accuracy.aclose()
        if self.approvals is not None:
            await self.approvals.aclose()
        if self.llm is not None:
            await self.llm.aclose()
        await self.ops.aclose()


def _refused(turn: Turn, error: PgbotError) -> list[Reply]:
    """A message that never got its turn: the usual WORKING reply, then why (every message is answered)."""
    return [Reply(kind=ReplyKind.WORKING, text="Working on it…"), turn.finish(render_error(error), error=error)]

"""The agent: one message in, replies out. The single way adapters reach core.

``handle`` posts a "working" reply at once, then either runs a slash command (no model needed) or the tool
loop: the model calls tools until it answers, within a step limit; tool problems the model can fix are fed
back to it as :class:`ModelHint`; everything else ends the turn with one clear error reply. Messages in one
thread are handled strictly in order, across replicas too; different threads run concurrently. A redelivered
event is handled once; on shutdown, work in flight finishes or is cancelled with a reply (``drain``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from core.agent import answer_actions, edit_actions
from core.agent.chart_actions import chart_answer, chart_answer_reply
from core.agent.commands import run_command
from core.agent.grounding import MAX_NUDGES, NUDGES, Problem, after_nudges, find_problem, refusal, repeats_earlier_sql
from core.agent.render import render_error
from core.approvals.executors import ProgressSink
from core.card_state import CardState
from core.cards import for_people
from core.config import Settings
from core.db.registry import DatabaseRegistry
from core.errors import BusyError, HandOff, ModelHint, PgbotError, QueryFailed
from core.llm.base import ChatTurn, LlmClient, ReadScope, ToolCall
from core.messages import ChartImage, Message, Reply, ReplyKind, ResultTable, ScheduleCard, new_id
from core.ops.health import Health
from core.ops.hooks import Ops, Turn
from core.ops.metrics import UNKNOWN_TOOL
from core.permissions import GroupLookup, resolve_role
from core.prompt.accuracy import Accuracy, TurnPrompt
from core.prompt.feedback import AnswerRecord
from core.prompt.schema_context import SchemaContext
from core.schedules.commands import plain_command
from core.sqlguard import SqlGuard
from core.threads.context import ContextStore
from core.threads.dedupe import EventLog, MemoryEventLog
from core.threads.inflight import LEASE_LOST, NOT_TAKEN, InFlight
from core.threads.lease import LocalThreadTurns, ThreadTurns, TurnTicket
from core.threads.limits import TurnLimiter
from core.threads.turn_status import (
    TurnStatus,
    TurnStatuses,
    bind,
    cancel_turn,
    command_phase,
    report_phase,
    tool_phase,
)
from core.tools.clarify import CLARIFY_TOOL, clarification_choices, clarification_text
from core.tools.format import table_for_model
from core.tools.registry import ToolContext, ToolOutput, ToolRegistry
from core.tools.toolsets import ToolSets
from core.undo.request import request_undo

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


@dataclass(slots=True)
class TurnState:
    """What one turn accumulated: statements run (in order), the last table, a pending change."""

    sql: list[str] = field(default_factory=list)
    table: ResultTable | None = None
    table_sql: str = ""  # the statement that produced ``table``
    meta: dict[str, str] = field(default_factory=dict)  # tools' facts for the reply (an export's file)
    output: ToolOutput | None = None
    last_hint: str | None = None
    repeated_failures: int = 0
    failures: int = 0
    tools_called: int = 0
    clarification: str | None = None  # set when the model asked the user a question instead of answering
    choices: tuple[str, ...] = ()  # the answers it offered to click (core.tools.clarify)
    results: list[str] = field(default_factory=list)  # tool results of this turn: what numbers may come from
    last_failed: bool = False  # the last tool call was a query Postgres could not parse, plan or run
    nudged: list[Problem] = field(default_factory=list)  # why prose replies were sent back (core.agent.grounding)
    aside: list[ChatTurn] = field(default_factory=list)  # sent to the model, never kept in the thread
    chart: ChartImage | None = None  # drawn by make_chart, shown with the answer
    more_tools: bool = False  # the model called more_tools: offer the full tool set from now on
    schedules: list[ScheduleCard] = field(default_factory=list)  # created or listed by a tool: shown with buttons


def read_scope(ctx: ToolContext) -> ReadScope:
    """The access a turn runs under, as thread history records it (database and mapped role)."""
    return ReadScope(database=ctx.database.name, role=ctx.actor.role)


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
                if self.inflight.closing:
                    async for reply in self._not_taken(message):
                        yield reply
                    return
                status = self.statuses.open(asker=message.identity, thread_key=message.thread_key)
                token = status.turn_id  # Cancel (cancel_turn) and a lost lease stop the turn by it
                try:
                    ticket = self.turns.enter(message.thread_key,
                                              on_lost=lambda: self.inflight.stop(token, LEASE_LOST))
                except BusyError as exc:
                    yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
                    yield turn.finish(render_error(exc), error=exc)
                    return
                try:
                    try:
                        if not await self._first_delivery(message):
                            return
                        await ticket.arrive()
                    except PgbotError as exc:
                        yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
                        yield turn.finish(render_error(exc), error=exc)
                        return
                    yield Reply(kind=ReplyKind.WORKING, text="Working on it…", meta={"turn": token})
                    for reply in await self.inflight.run(token, self._turn(message, ticket, turn, status)):
                        yield reply
                finally:
                    self.statuses.close(status)
                    await ticket.release()
        finally:
            turn.close()

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
        database = self.databases.get(name)
        actor = resolve_role(database=name, settings=database.settings, identity=message.identity,
                             groups=message.groups)
        ctx = ToolContext(
            settings=self.settings, databases=self.databases, database=database, actor=actor,
            thread_key=message.thread_key, store=self.store, guard=self.guard,
            log=log.bind(thread=message.thread_key, user=message.identity, database=name), question=message.text,
        )
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
            return await self._run_turn(ctx, llm, text, history)
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

    async def in_conversation(self, thread_key: str) -> bool:
        """Whether pgbot has talked in this thread (shared through the context store, so every replica and a
        restarted bot agree); adapters use it to answer thread replies that do not mention pgbot."""
        return await self.store.has_history(thread_key)

    async def _run_turn(self, ctx: ToolContext, llm: LlmClient, question: str, history: list[ChatTurn]) -> Reply:
        previous = [t.content for t in history if t.role == "user" and t.content][-2:]  # follow-ups keep tables
        report_phase(f"reading the schema of {ctx.database.name}")
        schema = await self.schema.parts(ctx.database, role=ctx.actor.role, question=question, previous=previous)
        tools = self.toolsets.for_turn(question, previous=previous, history=history)
        readable = await self.schema.readable_tables(ctx.database, role=ctx.actor.role) \
            if ctx.database.settings.roles is not None else None  # one role for all: nothing to hide
        prompt = await self.accuracy.prepare(
            db=ctx.database, role=ctx.actor.role, question=question, databases=self.databases.names,
            schema=schema, clarify_tool=any(spec.name == CLARIFY_TOOL for spec in self.toolsets.full),
            readable=readable, more_tools=self.toolsets.can_ask,
        )
        read_as: tuple[ReadScope, ...] = (read_scope(ctx),)  # every scope read under so far: the text may mix them
        # Stable first (system, tools, history), this question's context last: see core.prompt.system.
        system, asked = ChatTurn(role="system", content=prompt.system), prompt.question_turn(question)
        new_turns: list[ChatTurn] = [ChatTurn(role="user", content=question, read_as=read_as)]  # what history keeps
        state = TurnState()
        bound = self.settings.accuracy
        for _step in range(self.settings.llm.max_steps):
            report_phase("asking the model")
            completion = await llm.complete([system, *history, asked, *new_turns[1:]], tools)
            calls = completion.tool_calls
            if calls and completion.content and repeats_earlier_sql(calls, state.sql):
                calls = ()  # the SQL it ran, shown beside the answer (a ```sql block read as a call)
            if not calls:
                answer = (completion.content or "").strip() or "(The model returned an empty answer.)"
                problem = self._problem(question, history, answer, state, {spec.name for spec in tools})
                if problem is not None and problem not in state.nudged and len(state.nudged) < MAX_NUDGES:
                    state.nudged.append(problem)
                    ctx.log.info("answer_sent_back", problem=problem.value)
                    aside = [ChatTurn(role="assistant", content=answer), ChatTurn(role="user", content=NUDGES[problem])]
                    state.aside.extend(aside)
                    new_turns.extend(aside)
                    continue
                outcome = "answer" if problem is None else after_nudges(
                    problem, answer, sources=self._sources(question, history, state), ran_sql=bool(state.sql))
                if problem is not None and outcome != "answer":
                    return await self._withheld(ctx, answer, state, problem, new_turns, read_as,
                                                explain=outcome == "explain")
                new_turns.append(ChatTurn(role="assistant", content=answer, read_as=read_as))
                await self._keep(ctx, new_turns, state)
                reply = await self._final_answer(ctx, question, answer, state, prompt)
                return await chart_answer_reply(ctx, reply, state.chart)
            new_turns.append(ChatTurn(role="assistant", content=completion.content or "",
                                      tool_calls=completion.tool_calls, read_as=read_as))
            for call in completion.tool_calls:
                result_text = await self._call_tool(ctx, call, state)
                new_turns.append(ChatTurn(role="tool", tool_call_id=call.id, name=call.name, content=result_text,
                                          read_as=read_as))
            if state.more_tools:
                tools = self.toolsets.full
            if state.clarification is not None:
                # A question back is a pause too: the reply continues this thread, with this history.
                new_turns.append(ChatTurn(role="assistant", content=state.clarification, read_as=read_as))
                await self._keep(ctx, new_turns, state)
                return Reply(kind=ReplyKind.INFO, text=state.clarification, database=ctx.database.name,
                             meta={"clarification": "yes"}, choices=state.choices)
            if state.output is not None and state.output.pending is not None:
                # Approval is a pause: store the plan, show it, and end the turn until someone decides.
                await self._keep(ctx, new_turns, state)
                return await self.pending_reply(ctx, state.output)
            if state.output is not None and state.output.switched_database:
                ctx = await self._switch(ctx, state.output.switched_database)
                if read_scope(ctx) not in read_as:  # what follows may mix both databases' results
                    read_as = (*read_as, read_scope(ctx))
            if state.repeated_failures >= bound.max_repeated_failures or (state.failures and not bound.sql_retries):
                break
        await self._keep(ctx, [*new_turns, ChatTurn(role="assistant", content="(gave up)", read_as=read_as)], state)
        return self._gave_up(ctx, state)

    async def _keep(self, ctx: ToolContext, new_turns: list[ChatTurn], state: TurnState) -> None:
        """Append the turn to the thread's history, without the replies that were sent back (invented results
        must not become context for later questions)."""
        await self.store.append(ctx.thread_key, [t for t in new_turns if not any(t is a for a in state.aside)])

    def _problem(self, question: str, history: list[ChatTurn], answer: str, state: TurnState,
                 tools: set[str]) -> Problem | None:
        """Why a prose reply cannot be shown as it is (core.agent.grounding); None when it can, or the check is off."""
        if not self.settings.accuracy.grounded_answers:
            return None
        problem = find_problem(answer, sources=self._sources(question, history, state), ran_sql=bool(state.sql),
                               last_failed=state.last_failed, tools=tools)
        clarifying = self.accuracy.is_clarifying(answer, ran_sql=bool(state.sql), called_tools=state.tools_called > 0)
        if clarifying and (problem is None or (problem is Problem.UNGROUNDED and problem in state.nudged)):
            return None  # a question back; asked again after the nudge, its numbers are the options it offers
        return problem

    @staticmethod
    def _sources(question: str, history: list[ChatTurn], state: TurnState) -> list[str]:
        return [question, *(t.content for t in history if t.content), *state.results]

    async def _withheld(self, ctx: ToolContext, answer: str, state: TurnState, problem: Problem,
                        new_turns: list[ChatTurn], read_as: tuple[ReadScope, ...], *, explain: bool) -> Reply:
        """The model still has no result behind its reply after the nudges: say so instead of showing it, or
        (``explain``) show its explanation, which has no numbers, with the last problem."""
        if explain:
            text = kept = f"{answer}\n\n(No query succeeded for this. The last problem was: {state.last_hint})"
        else:
            ctx.log.info("answer_withheld", problem=problem.value)
            text, kept = refusal(problem), "(no answer: the reply had no result behind it)"
        await self._keep(ctx, [*new_turns, ChatTurn(role="assistant", content=kept, read_as=read_as)], state)
        return Reply(kind=ReplyKind.ERROR, text=text, sql=tuple(state.sql), table=state.table,
                     database=ctx.database.name)

    def _gave_up(self, ctx: ToolContext, state: TurnState) -> Reply:
        if state.repeated_failures >= self.settings.accuracy.max_repeated_failures:
            why = f"the same problem came up {state.repeated_failures} times in a row, so I stopped."
        elif state.failures and not self.settings.accuracy.sql_retries:
            why = "the query failed and retries are switched off ([accuracy] sql_retries)."
        else:
            why = f"it took more than {self.settings.llm.max_steps} steps."
        reason = f" The last problem was: {state.last_hint}" if state.last_hint else ""
        return Reply(
            kind=ReplyKind.ERROR, text=f"I could not finish this: {why}{reason}",
            sql=tuple(state.sql), table=state.table, database=ctx.database.name,
        )

    async def _call_tool(self, ctx: ToolContext, call: ToolCall, state: TurnState) -> str:
        """Run one tool call; return the text the model sees. Fixable problems come back as hints."""
        state.tools_called += 1
        label = call.name if call.name in self.tools else UNKNOWN_TOOL  # model output: keep labels bounded
        report_phase(tool_phase(label, database=ctx.database.name))
        try:
            try:
                output = await self.tools.get(call.name).call(ctx, call.arguments)
            except HandOff as handoff:
                output = await self._hand_off(ctx, call, handoff)
        except ModelHint as hint:
            self.ops.metrics.tool_call(label, "hint")
            state.failures += 1
            state.repeated_failures = state.repeated_failures + 1 if hint.hint == state.last_hint else 1
            state.last_hint = hint.hint
            state.last_failed = isinstance(hint, QueryFailed)
            ctx.log.info("tool_hint", tool=call.name, hint=hint.hint[:300])
            return f"ERROR: {hint.hint}"
        except Exception:
            self.ops.metrics.tool_call(label, "error")
            raise
        self.ops.metrics.tool_call(label, "ok")
        if output.chart is not None:
            state.chart = output.chart
        if call.name == CLARIFY_TOOL:
            args = self.tools.get(CLARIFY_TOOL).parse_arguments(call.arguments).model_dump()
            state.clarification = clarification_text(str(args["question"]))
            state.choices = clarification_choices(args.get("options"))
        state.output = output
        state.last_failed = False
        state.results.append(output.text)
        if output.table is not None:  # "20 rows", "5 columns" may be stated from a result
            state.results.append(f"{output.table.row_count} {len(output.table.columns)}")
        state.more_tools = state.more_tools or output.more_tools
        state.sql.extend(output.sql)
        state.meta.update(output.meta)
        state.schedules.extend(output.schedules)
        if output.table is not None and output.sql:
            state.table = output.table
            state.table_sql = output.sql[-1]
        return output.text

    async def _hand_off(self, ctx: ToolContext, call: ToolCall, handoff: HandOff) -> ToolOutput:
        """Pass a call to the tool it belongs to (same guard and rules there), or refuse it as a plain hint
        when that tool is switched off."""
        if handoff.tool not in self.tools:
            raise ModelHint(handoff.hint)
        ctx.log.info("tool_handed_off", tool=call.name, to=handoff.tool)
        output = await self.tools.get(handoff.tool).call(ctx, handoff.arguments)
        output.text = f"{handoff.note}\n{output.text}"
        return output

    async def _switch(self, ctx: ToolContext, name: str) -> ToolContext:
        database = self.databases.get(name)
        actor = resolve_role(database=name, settings=database.settings, identity=ctx.actor.identity,
                             groups=ctx.actor.groups)
        return ToolContext(
            settings=ctx.settings, databases=ctx.databases, database=database, actor=actor, thread_key=ctx.thread_key,
            store=ctx.store, guard=ctx.guard, log=ctx.log.bind(database=name), question=ctx.question,
        )

    async def pending_reply(self, ctx: ToolContext, output: ToolOutput) -> Reply:
        """Store a proposed change and return the message that shows it with Approve / Reject."""
        if output.pending is None or self.approvals is None:
            raise PgbotError("Changes are not enabled in this pgbot.")
        prompt = await self.approvals.submit(output.pending)
        self.ops.metrics.approval("requested")
        prompt, text = for_people(prompt, model_text=output.text)
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
        """The turn a WORKING reply named (``meta["turn"]``), while it runs in this process."""
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

    async def _final_answer(
        self, ctx: ToolContext, question: str, answer: str, state: TurnState, prompt: TurnPrompt
    ) -> Reply:
        """The model's prose: a clarifying question (INFO), or an ANSWER with notes, remembered for 👍/👎."""
        if self.accuracy.is_clarifying(answer, ran_sql=bool(state.sql), called_tools=state.tools_called > 0):
            return Reply(kind=ReplyKind.INFO, text=answer, database=ctx.database.name, meta={"clarification": "yes"})
        text, meta = self.accuracy.finish_answer(answer, prompt=prompt, ran_sql=bool(state.sql))
        answer_id = new_id()
        await self.accuracy.remember(AnswerRecord(
            answer_id=answer_id, database=ctx.database.name, question=question, sql=tuple(state.sql),
            thread_key=ctx.thread_key, asked_by=ctx.actor.identity, table_sql=state.table_sql,
        ))
        return Reply(
            kind=ReplyKind.ANSWER, text=text, sql=tuple(state.sql), table=state.table,
            database=ctx.database.name, answer_id=answer_id, meta={**state.meta, **meta}, role=ctx.actor.role,
            schedules=tuple(state.schedules),
        )

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
        their platform ``groups``), guarded and limited like any read; the reply's meta names the file."""
        if self.inflight.closing:
            return Reply(kind=ReplyKind.ERROR, text=CLICK_NOT_TAKEN)
        with self.inflight.opened(), self.ops.request() as request_id:  # a drain waits for an export
            try:
                return await answer_actions.export_answer(self, answer_id=answer_id, identity=user, groups=groups,
                                                          thread_key=thread_key)
            except Exception as exc:  # noqa: BLE001 - the error policy: one reply, traceback logged
                return render_error(exc, error_id=request_id)

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
        if self.inflight.closing:
            return Reply(kind=ReplyKind.ERROR, text=CLICK_NOT_TAKEN)
        with self.inflight.opened(), self.ops.request() as request_id:  # a drain waits for a chart
            try:
                return await chart_answer(self, answer_id=answer_id, identity=user, groups=groups,
                                          thread_key=thread_key)
            except Exception as exc:  # noqa: BLE001 - the error policy: one reply, traceback logged
                return render_error(exc, error_id=request_id)

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
        if self.inflight.closing:
            return Reply(kind=ReplyKind.ERROR, text=CLICK_NOT_TAKEN)
        with self.inflight.opened(), self.ops.request() as request_id:
            try:
                return await request_undo(self, action_id=action_id, identity=user, groups=groups,
                                          thread_key=thread_key)
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


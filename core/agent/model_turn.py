"""One question answered by the model: the tool loop of a turn.

The model calls tools until it answers, within ``[llm] max_steps``. Problems it can fix come back to it as
:class:`ModelHint` text; a prose reply with nothing behind it is sent back, then withheld (core.agent.grounding);
a tool that pauses the turn (a change for approval, a question back: ``ToolOutput.pause``) ends it with the card
or the question. The thread keeps the turn's history in every case, without the replies that were sent back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.agent.chart_actions import chart_answer_reply
from core.agent.grounding import (
    MAX_NUDGES,
    NUDGES,
    READ_TOOL,
    Problem,
    after_nudges,
    find_problem,
    refusal,
    repeats_earlier_sql,
)
from core.agent.result_answer import result_answer, states_result
from core.errors import HandOff, ModelHint, QueryFailed
from core.llm.base import ChatTurn, Completion, LlmClient, ReadScope, ToolCall, ToolSpec
from core.llm.textcalls import extract_text_tool_calls
from core.messages import ChartImage, ExportFile, Reply, ReplyKind, ResultTable, ScheduleCard, new_id
from core.ops.metrics import UNKNOWN_TOOL
from core.prompt.feedback import AnswerRecord
from core.threads.turn_status import report_phase, tool_phase
from core.tools.clarify import CLARIFY_TOOL
from core.tools.registry import Clarification, ToolContext, ToolOutput

if TYPE_CHECKING:
    from core.agent.host import CommandHost
    from core.config import Settings
    from core.ops.metrics import Metrics
    from core.prompt.accuracy import Accuracy, TurnPrompt
    from core.prompt.schema_context import SchemaContext
    from core.threads.context import ContextStore
    from core.tools.registry import ToolRegistry
    from core.tools.toolsets import ToolSets


def read_scope(ctx: ToolContext) -> ReadScope:
    """The access a turn runs under, as thread history records it (database and mapped role)."""
    return ReadScope(database=ctx.database.name, role=ctx.actor.role)


@dataclass(slots=True)
class TurnState:
    """What one turn accumulated: statements run (in order), the last table, the call that paused it."""

    sql: list[str] = field(default_factory=list)
    table: ResultTable | None = None
    table_sql: str = ""  # the statement that produced ``table``
    export: ExportFile | None = None  # the last export's file, delivered with the answer
    output: ToolOutput | None = None  # the last call's output (a database switch takes effect after its batch)
    paused: ToolOutput | None = None  # the first call that paused the turn: its pause, and what the model read
    last_hint: str | None = None
    repeated_failures: int = 0
    failures: int = 0
    tools_called: int = 0
    results: list[str] = field(default_factory=list)  # tool results of this turn: what numbers may come from
    last_failed: bool = False  # the last tool call was a query Postgres could not parse, plan or run
    nudged: list[Problem] = field(default_factory=list)  # why prose replies were sent back (core.agent.grounding)
    aside: list[ChatTurn] = field(default_factory=list)  # sent to the model, never kept in the thread
    chart: ChartImage | None = None  # drawn by make_chart, shown with the answer
    more_tools: bool = False  # the model called more_tools: offer the full tool set from now on
    schedules: list[ScheduleCard] = field(default_factory=list)  # created or listed by a tool: shown with buttons


@dataclass(frozen=True, slots=True)
class TurnParts:
    """What a model turn uses of the agent, gathered once per agent."""

    settings: Settings
    tools: ToolRegistry
    schema: SchemaContext
    toolsets: ToolSets
    accuracy: Accuracy
    store: ContextStore
    metrics: Metrics
    host: CommandHost  # the databases, a switch of database (context_for), a proposed change (pending_reply)


class ModelTurn:
    """The model's side of one message: build the prompt, call the model and its tools, shape the reply."""

    def __init__(self, parts: TurnParts, *, ctx: ToolContext, llm: LlmClient, question: str,
                 history: list[ChatTurn]) -> None:
        self.parts = parts
        self.ctx = ctx
        self.llm = llm
        self.question = question
        self.history = history
        self.state = TurnState()
        self.read_as: tuple[ReadScope, ...] = (read_scope(ctx),)  # every scope read under so far: text may mix them
        self.new_turns: list[ChatTurn] = [ChatTurn(role="user", content=question, read_as=self.read_as)]

    async def run(self) -> Reply:
        """Ask the model until it answers, a tool pauses the turn, or the step or failure bounds are reached."""
        settings, state = self.parts.settings, self.state
        prompt, tools = await self._prompt()
        # Stable first (system, tools, history), this question's context last: see core.prompt.system.
        system, asked = ChatTurn(role="system", content=prompt.system), prompt.question_turn(self.question)
        for _step in range(settings.llm.max_steps):
            report_phase("asking the model")
            completion = await self.llm.complete([system, *self.history, asked, *self.new_turns[1:]], tools)
            calls = completion.tool_calls
            if calls and completion.content and repeats_earlier_sql(calls, state.sql):
                calls = ()  # the SQL it ran, shown beside the answer (a ```sql block read as a call)
            if not calls and completion.content:
                unoffered = self._unoffered_calls(completion.content, {spec.name for spec in tools})
                if unoffered:
                    completion = completion.model_copy(update={"content": unoffered[0], "tool_calls": unoffered[1]})
                    calls = completion.tool_calls
            if not calls:
                reply = await self._prose(completion.content, prompt, {spec.name for spec in tools})
                if reply is None:
                    continue  # sent back to the model (core.agent.grounding)
                return reply
            failures = state.failures
            await self._run_calls(completion)
            if state.more_tools:
                tools = self.parts.toolsets.full
            if state.paused is not None:
                return await self._paused(state.paused)
            stated = self._stated_result(completion) if state.failures == failures else None
            if stated is not None:
                return await self._result_reply(prompt, stated)
            if state.output is not None and state.output.switched_database:
                self._switch(state.output.switched_database)
            bound = settings.accuracy
            if state.repeated_failures >= bound.max_repeated_failures or (state.failures and not bound.sql_retries):
                break
        await self._keep(ChatTurn(role="assistant", content="(gave up)", read_as=self.read_as))
        return self._gave_up()

    def _stated_result(self, completion: Completion) -> ResultTable | None:
        """After a batch whose calls all succeeded: the table of its last call when that was a query whose
        result pgbot states itself instead of asking the model for a sentence (``[llm] answer_text``,
        core.agent.result_answer); None when the model answers."""
        output = self.state.output
        if (not states_result(self.parts.settings.llm.answer_text, completion)
                or completion.tool_calls[-1].name != READ_TOOL or output is None or output.switched_database):
            return None
        return output.table

    async def _result_reply(self, prompt: TurnPrompt, table: ResultTable) -> Reply:
        """The answer stated from the last query's result, with the notes and buttons of any answer."""
        state = self.state
        text = result_answer(table)
        self.ctx.log.info("answered_from_result", rows=table.row_count)
        await self._keep(ChatTurn(role="assistant", content=text, read_as=self.read_as))
        reply = await self._final_answer(text, prompt)
        return await chart_answer_reply(self.ctx, reply, state.chart)

    async def _prompt(self) -> tuple[TurnPrompt, Sequence[ToolSpec]]:
        """The turn's prompt (schema, examples, dates) and the tools offered first."""
        ctx, parts, question = self.ctx, self.parts, self.question
        previous = [t.content for t in self.history if t.role == "user" and t.content][-2:]  # follow-ups keep tables
        report_phase(f"reading the schema of {ctx.database.name}")
        schema = await parts.schema.parts(ctx.database, role=ctx.actor.role, question=question, previous=previous)
        tools = parts.toolsets.for_turn(question, previous=previous, history=self.history)
        readable = await parts.schema.readable_tables(ctx.database, role=ctx.actor.role) \
            if ctx.database.settings.roles is not None else None  # one role for all: nothing to hide
        prompt = await parts.accuracy.prepare(
            db=ctx.database, role=ctx.actor.role, question=question, databases=parts.host.databases.names,
            schema=schema, clarify_tool=any(spec.name == CLARIFY_TOOL for spec in parts.toolsets.full),
            readable=readable, more_tools=parts.toolsets.can_ask,
        )
        return prompt, tools

    async def _prose(self, content: str | None, prompt: TurnPrompt, tools: set[str]) -> Reply | None:
        """The model replied in prose: the answer, or None when it was sent back with a nudge."""
        state = self.state
        answer = (content or "").strip() or "(The model returned an empty answer.)"
        problem = self._problem(answer, tools)
        if problem is not None and problem not in state.nudged and len(state.nudged) < MAX_NUDGES:
            state.nudged.append(problem)
            self.ctx.log.info("answer_sent_back", problem=problem.value)
            aside = [ChatTurn(role="assistant", content=answer), ChatTurn(role="user", content=NUDGES[problem])]
            state.aside.extend(aside)
            self.new_turns.extend(aside)
            return None
        outcome = "answer" if problem is None else after_nudges(
            problem, answer, sources=self._sources(), ran_sql=bool(state.sql))
        if problem is not None and outcome != "answer":
            return await self._withheld(answer, problem, explain=outcome == "explain")
        await self._keep(ChatTurn(role="assistant", content=answer, read_as=self.read_as))
        reply = await self._final_answer(answer, prompt)
        return await chart_answer_reply(self.ctx, reply, state.chart)

    def _unoffered_calls(self, content: str, offered: set[str]) -> tuple[str | None, tuple[ToolCall, ...]] | None:
        """A call written as text to a tool this pgbot has but did not offer this step (the read set leaves the
        management tools out to save tokens; core.tools.toolsets) is taken as if the model had asked for
        more_tools first: the offer is a prompt-size economy, not a permission, which roles and approvals are.
        """
        unoffered = set(self.parts.tools.names) - offered
        parameters = {spec.name: spec.parameter_names() for spec in self.parts.tools.specs() if spec.name in unoffered}
        rest, calls = extract_text_tool_calls(content, unoffered, first_id=10_000 + len(self.new_turns),
                                              parameters=parameters)
        if not calls:
            return None
        self.ctx.log.info("unoffered_tool_called", tools=[call.name for call in calls])
        self.state.more_tools = True
        return rest or None, tuple(calls)

    async def _run_calls(self, completion: Completion) -> None:
        self.new_turns.append(ChatTurn(role="assistant", content=completion.content or "",
                                       tool_calls=completion.tool_calls, read_as=self.read_as))
        for call in completion.tool_calls:
            result_text = await self._call_tool(call)
            self.new_turns.append(ChatTurn(role="tool", tool_call_id=call.id, name=call.name, content=result_text,
                                           read_as=self.read_as))

    async def _paused(self, output: ToolOutput) -> Reply:
        """A tool paused the turn: keep the history so far and show the question or the change's card; the
        asker's reply or an approver's click goes on from there. Every call of the batch has run, so each has
        its result in the history."""
        ctx = self.ctx
        if isinstance(output.pause, Clarification):
            question = output.pause.question
            await self._keep(ChatTurn(role="assistant", content=question, read_as=self.read_as))
            return Reply(kind=ReplyKind.INFO, text=question, database=ctx.database.name, clarification=True,
                         choices=output.pause.choices)
        await self._keep()
        return await self.parts.host.pending_reply(ctx, output)

    def _switch(self, name: str) -> None:
        ctx = self.ctx
        self.ctx = self.parts.host.context_for(database=name, identity=ctx.actor.identity, groups=ctx.actor.groups,
                                               thread_key=ctx.thread_key, question=ctx.question)
        if read_scope(self.ctx) not in self.read_as:  # what follows may mix both databases' results
            self.read_as = (*self.read_as, read_scope(self.ctx))

    async def _keep(self, *last: ChatTurn) -> None:
        """Append the turn to the thread's history, without the replies that were sent back (invented results
        must not become context for later questions)."""
        self.new_turns.extend(last)
        kept = [t for t in self.new_turns if not any(t is a for a in self.state.aside)]
        await self.parts.store.append(self.ctx.thread_key, kept)

    def _problem(self, answer: str, tools: set[str]) -> Problem | None:
        """Why a prose reply cannot be shown as it is (core.agent.grounding); None when it can, or the check is off."""
        state = self.state
        if not self.parts.settings.accuracy.grounded_answers:
            return None
        problem = find_problem(answer, sources=self._sources(), ran_sql=bool(state.sql),
                               last_failed=state.last_failed, tools=tools)
        clarifying = self.parts.accuracy.is_clarifying(answer, ran_sql=bool(state.sql),
                                                       called_tools=state.tools_called > 0)
        if clarifying and (problem is None or (problem is Problem.UNGROUNDED and problem in state.nudged)):
            return None  # a question back; asked again after the nudge, its numbers are the options it offers
        return problem

    def _sources(self) -> list[str]:
        return [self.question, *(t.content for t in self.history if t.content), *self.state.results]

    async def _withheld(self, answer: str, problem: Problem, *, explain: bool) -> Reply:
        """The model still has no result behind its reply after the nudges: say so instead of showing it, or
        (``explain``) show its explanation, which has no numbers, with the last problem."""
        state = self.state
        if explain:
            text = kept = f"{answer}\n\n(No query succeeded for this. The last problem was: {state.last_hint})"
        else:
            self.ctx.log.info("answer_withheld", problem=problem.value)
            text, kept = refusal(problem), "(no answer: the reply had no result behind it)"
        await self._keep(ChatTurn(role="assistant", content=kept, read_as=self.read_as))
        return Reply(kind=ReplyKind.ERROR, text=text, sql=tuple(state.sql), table=state.table,
                     database=self.ctx.database.name)

    def _gave_up(self) -> Reply:
        state, settings = self.state, self.parts.settings
        if state.repeated_failures >= settings.accuracy.max_repeated_failures:
            why = f"the same problem came up {state.repeated_failures} times in a row, so I stopped."
        elif state.failures and not settings.accuracy.sql_retries:
            why = "the query failed and retries are switched off ([accuracy] sql_retries)."
        else:
            why = f"it took more than {settings.llm.max_steps} steps."
        reason = f" The last problem was: {state.last_hint}" if state.last_hint else ""
        return Reply(
            kind=ReplyKind.ERROR, text=f"I could not finish this: {why}{reason}",
            sql=tuple(state.sql), table=state.table, database=self.ctx.database.name,
        )

    async def _call_tool(self, call: ToolCall) -> str:
        """Run one tool call; return the text the model sees. Fixable problems come back as hints."""
        ctx, state, tools, metrics = self.ctx, self.state, self.parts.tools, self.parts.metrics
        state.tools_called += 1
        label = call.name if call.name in tools else UNKNOWN_TOOL  # model output: keep labels bounded
        report_phase(tool_phase(label, database=ctx.database.name))
        try:
            try:
                output = await tools.get(call.name).call(ctx, call.arguments)
            except HandOff as handoff:
                output = await self._hand_off(call, handoff)
        except ModelHint as hint:
            metrics.tool_call(label, "hint")
            state.failures += 1
            state.repeated_failures = state.repeated_failures + 1 if hint.hint == state.last_hint else 1
            state.last_hint = hint.hint
            state.last_failed = isinstance(hint, QueryFailed)
            ctx.log.info("tool_hint", tool=call.name, hint=hint.hint[:300])
            return f"ERROR: {hint.hint}"
        except Exception:
            metrics.tool_call(label, "error")
            raise
        metrics.tool_call(label, "ok")
        self._gather(output)
        return output.text

    def _gather(self, output: ToolOutput) -> None:
        """What a successful call adds to the turn: its SQL, table, chart, export, schedules, a pause."""
        state = self.state
        if output.chart is not None:
            state.chart = output.chart
        if output.pause is not None and state.paused is None:
            state.paused = output
        state.output = output
        state.last_failed = False
        state.results.append(output.text)
        if output.table is not None:  # "20 rows", "5 columns" may be stated from a result
            state.results.append(f"{output.table.row_count} {len(output.table.columns)}")
        state.more_tools = state.more_tools or output.more_tools
        state.sql.extend(output.sql)
        if output.export is not None:
            state.export = output.export
        state.schedules.extend(output.schedules)
        if output.table is not None and output.sql:
            state.table = output.table
            state.table_sql = output.sql[-1]

    async def _hand_off(self, call: ToolCall, handoff: HandOff) -> ToolOutput:
        """Pass a call to the tool it belongs to (same guard and rules there), or refuse it as a plain hint
        when that tool is switched off."""
        if handoff.tool not in self.parts.tools:
            raise ModelHint(handoff.hint)
        self.ctx.log.info("tool_handed_off", tool=call.name, to=handoff.tool)
        output = await self.parts.tools.get(handoff.tool).call(self.ctx, handoff.arguments)
        output.text = f"{handoff.note}\n{output.text}"
        return output

    async def _final_answer(self, answer: str, prompt: TurnPrompt) -> Reply:
        """The model's prose: a clarifying question (INFO), or an ANSWER with notes, remembered for 👍/👎."""
        ctx, state, accuracy = self.ctx, self.state, self.parts.accuracy
        if accuracy.is_clarifying(answer, ran_sql=bool(state.sql), called_tools=state.tools_called > 0):
            return Reply(kind=ReplyKind.INFO, text=answer, database=ctx.database.name, clarification=True)
        text, notes = accuracy.finish_answer(answer, prompt=prompt, ran_sql=bool(state.sql))
        answer_id = new_id()
        await accuracy.remember(AnswerRecord(
            answer_id=answer_id, database=ctx.database.name, question=self.question, sql=tuple(state.sql),
            thread_key=ctx.thread_key, asked_by=ctx.actor.identity, table_sql=state.table_sql,
        ))
        return Reply(
            kind=ReplyKind.ANSWER, text=text, sql=tuple(state.sql), table=state.table,
            database=ctx.database.name, answer_id=answer_id, export=state.export, notes=notes,
            role=ctx.actor.role, schedules=tuple(state.schedules),
        )

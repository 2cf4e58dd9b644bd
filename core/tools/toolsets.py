"""Which tools the model is offered: a fixed read set, or the fixed full set when the question needs it.

Every tool schema is sent with every call, and a small local model pays for each one in prompt processing
(the 18 tools were 2,400 of a first call's 4,100 tokens). So a call offers the everyday read tools (those
registered with ``always=True``: run_query, list_tables, describe_table, ask_clarification, and the
database tools when several databases are configured) plus ``more_tools``; the management tools (changes,
backups, migrations, diagnostics, index builds, CSV export, charts, schedules, and third-party tools) join when:

- the question, or one of the thread's two previous questions, is about them: a cheap keyword match
  (:data:`MANAGEMENT_WORDS`; a false positive costs only tokens);
- the thread already used one of them, or more_tools (the thread "is about them");
- the model called ``more_tools`` earlier in this turn.

Two fixed sets, never a per-question mix: the tool block must be byte-identical from one call to the next
for servers to reuse the prompt prefix, and it is, within each set.

Why propose_change is not in the read set: a change request almost always names its verb (update, delete,
add, set, ...), which the keyword match catches, and a model that sends a change to run_query anyway gets
it held as the same proposal or told which tool to use (issue 14, item 4), so a miss costs a step, not a
wrong answer. Read questions, the common case, do not pay for its schema. A call the model writes as text
to a tool it was not offered (a small model that knows propose_change from the rules) is taken as if it had
called more_tools first (core.agent.model_turn): the offer saves tokens, it is not a permission.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.llm.base import ChatTurn, ToolSpec
from core.tools.clarify import CLARIFY_TOOL
from core.tools.more import MORE_TOOLS
from core.tools.registry import ToolRegistry

DATABASE_TOOLS = frozenset({"list_databases", "switch_database"})  # pointless with one database

# Words that mean a question is about management work, not reading data. Verbs in their base form only
# ("cancel order 7", "mark it shipped"): read questions use participles ("cancelled orders", "assigned").
MANAGEMENT_WORDS = re.compile(
    r"\b("
    # changes
    r"insert|update|delete|remove|add|set|modify|rename|create|drop|alter|truncate|merge|upsert|grant|revoke"
    r"|fix|mark|assign|cancel|archive|undo|revert|change(?!\s+(in|of|from|between|over)\b)"
    # backups and migrations
    r"|back\s?ups?|back\s+up|dump|restore|migrations?|migrate"
    # diagnostics and indexes
    r"|slow(er|ly)?|faster|speed\s+up|explain|query\s+plans?|execution\s+plans?|index(es)?|indices|health(y)?"
    r"|bloat(ed)?|vacuum|analy[sz]e|locks?|locking|blocking|deadlocks?|pg_stat\w*|cache\s+hit|dead\s+rows"
    r"|tune|tuning|optimi[sz]e"
    # export
    r"|export|csv|download|spreadsheet|excel|(?<!on\s)files?"
    # charts (make_chart) and schedules (create_schedule, list_schedules)
    r"|plot|chart|graph|visuali[sz]e|schedules?|scheduled|daily|weekly|hourly|monthly"
    r"|every\s+(\d+\s+)?(minutes?|hours?|days?|weeks?|months?|morning|evening|weekday|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday)"
    r")\b", re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ToolSets:
    read: tuple[ToolSpec, ...]
    full: tuple[ToolSpec, ...]

    @classmethod
    def build(cls, tools: ToolRegistry, *, clarify: bool, databases: int) -> ToolSets:
        """Both sets for this registry, in registration order (the same JSON on every call). ``clarify``:
        whether ask_clarification is offered at all; ``databases``: how many databases are configured."""
        specs = [s for s in tools.specs() if (clarify or s.name != CLARIFY_TOOL)
                 and not (databases < 2 and s.name in DATABASE_TOOLS)]
        full = tuple(s for s in specs if s.name != MORE_TOOLS)
        core = [s for s in specs if tools.is_always(s.name)]
        if len(core) - (MORE_TOOLS in tools) >= len(full):  # nothing to add: one set
            return cls(read=full, full=full)
        return cls(read=tuple(core), full=full)

    @property
    def split(self) -> bool:
        """Whether there are two sets (else every call offers :attr:`full`)."""
        return self.read is not self.full

    @property
    def can_ask(self) -> bool:
        """Whether the read set offers more_tools."""
        return any(s.name == MORE_TOOLS for s in self.read)

    def for_turn(self, question: str, *, previous: Sequence[str] = (), history: Sequence[ChatTurn] = ()
                 ) -> tuple[ToolSpec, ...]:
        """The set for a turn's first call (``more_tools`` switches the later calls to :attr:`full`)."""
        return self.full if self.wants_full(question, previous=previous, history=history) else self.read

    def wants_full(self, question: str, *, previous: Sequence[str] = (), history: Sequence[ChatTurn] = ()
                   ) -> bool:
        if not self.split:
            return True
        if any(MANAGEMENT_WORDS.search(text) for text in (question, *previous)):
            return True
        everyday = {s.name for s in self.read} - {MORE_TOOLS}
        return any(call.name not in everyday for turn in history for call in turn.tool_calls)

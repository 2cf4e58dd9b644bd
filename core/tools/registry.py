"""Tools the model (and slash commands) can call: one typed async function each.

A tool's JSON schema comes from its signature and the ``Args:`` section of its docstring, so adding a tool
never edits the agent loop. Built-in tools register through the same ``pgbot.tools`` entry-point group a
third-party package would use.

A tool's :class:`ToolKind` is a promise :meth:`Tool.call` enforces (:class:`ToolKindError`): a READ tool never
returns a change to approve, and a change tool (WRITE, DDL, ADMIN) runs nothing itself, so it reports no SQL
run; it returns a :class:`PendingAction`, or only text when there is nothing to propose (the index exists).
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias, get_type_hints

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from core.approvals.executors import ActionExecutor, executor_operation
from core.errors import ModelHint
from core.llm.base import ToolSpec
from core.messages import ChartImage, ExportFile, ResultTable, ScheduleCard

if TYPE_CHECKING:
    from core.approvals.pending import PendingAction
    from core.config import Settings
    from core.db.base import Database, PostgresDatabase
    from core.db.registry import DatabaseRegistry
    from core.permissions import Actor
    from core.sqlguard import SqlGuard
    from core.threads.context import ContextStore


class ToolKind(enum.StrEnum):
    READ = "read"  # runs at once, read-only, as the user's role; never returns a PendingAction
    WRITE = "write"  # DML: becomes a PendingAction; runs nothing itself
    DDL = "ddl"  # schema change: becomes a PendingAction; runs nothing itself
    ADMIN = "admin"  # maintenance, backups: becomes a PendingAction; runs nothing itself


class ToolKindError(TypeError):
    """A tool broke its kind's promise (a bug in the tool, never the user's or the model's doing): the turn
    ends as an internal error with a logged traceback rather than carry on as if it had not."""


@dataclass(slots=True)
class ToolContext:
    """Everything a tool may use; passed explicitly as the first argument.

    ``database`` is the question path's :class:`Database`; a tool that needs the PostgreSQL server itself (a
    change's preview, an export, diagnostics, migrations, backups) asks for it with :meth:`postgres`.
    """

    settings: Settings
    databases: DatabaseRegistry
    database: Database
    actor: Actor
    thread_key: str
    store: ContextStore
    guard: SqlGuard
    log: structlog.stdlib.BoundLogger
    question: str = ""

    def postgres(self) -> PostgresDatabase:
        """This conversation's database as a PostgreSQL server (NotPostgresError when it is not one)."""
        return self.databases.postgres(self.database.name)


@dataclass(frozen=True, slots=True)
class Clarification:
    """A question back to the asker (core.tools.clarify), with the answers they may click."""

    question: str
    choices: tuple[str, ...] = ()


Pause: TypeAlias = "PendingAction | Clarification"
"""Why a tool ended the turn before the model answered: a change waiting for approval, or a question back.
The agent keeps the thread's history and replies with the card or the question; the next click or message
goes on from there (conventions: approval is a pause, not branches in the loop)."""


@dataclass(slots=True)
class ToolOutput:
    """A tool's result: text for the model, and what the user should see (SQL run, a table)."""

    text: str
    sql: tuple[str, ...] = ()
    table: ResultTable | None = None
    chart: ChartImage | None = None  # drawn by make_chart: shown with the turn's answer
    pause: Pause | None = None  # the turn stops here, whatever else the model asked for
    switched_database: str | None = None
    export: ExportFile | None = None  # an export's file, for the reply only: its path is never shown in chat
    schedules: tuple[ScheduleCard, ...] = ()  # schedules created or listed: the answer shows them with buttons
    more_tools: bool = False  # from now on this turn, offer every tool (core.tools.toolsets)


ToolFunc = Callable[..., Awaitable[ToolOutput]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    kind: ToolKind
    description: str
    arguments: type[BaseModel]
    func: ToolFunc
    always: bool = False  # offered on every call; the others only when a question needs them (core.tools.toolsets)

    def spec(self) -> ToolSpec:
        """The JSON schema the model sees, without what costs tokens and says nothing: titles, and the
        ``anyOf [..., null]`` with ``default: null`` of an optional argument (leaving it out means null)."""
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
            variants = prop.get("anyOf")
            if prop.get("default", ...) is None and isinstance(variants, list):
                kept = [v for v in variants if v != {"type": "null"}]
                if len(kept) == 1:
                    del prop["anyOf"], prop["default"]
                    prop.update(kept[0])
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    def parse_arguments(self, raw: str | dict[str, Any]) -> BaseModel:
        """Validate the model's arguments; problems become a :class:`ModelHint` so the model can retry."""
        try:
            if isinstance(raw, dict):
                return self.arguments.model_validate(raw)
            return self.arguments.model_validate_json(raw or "{}")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise ModelHint(f"Invalid arguments for {self.name}: {problems}. Send valid JSON.") from None

    async def call(self, ctx: ToolContext, raw_arguments: str | dict[str, Any]) -> ToolOutput:
        args = self.parse_arguments(raw_arguments)
        output = await self.func(ctx, **args.model_dump())
        self.check_kind(output)
        return output

    def check_kind(self, output: ToolOutput) -> None:
        """Raise :class:`ToolKindError` if ``output`` breaks what this tool's kind promises."""
        if self.kind is ToolKind.READ and output.pause is not None and not isinstance(output.pause, Clarification):
            raise ToolKindError(f"tool {self.name} is registered READ but returned a change to approve "
                                f"({output.pause.id}); register it as WRITE, DDL or ADMIN")
        if self.kind is not ToolKind.READ and output.sql:
            raise ToolKindError(f"tool {self.name} is registered {self.kind.name} but reports SQL it ran "
                                f"({len(output.sql)} statement(s)); a change runs only once approved: return a "
                                "PendingAction instead")


_TOOL_ATTR = "__pgbot_tool__"


def tool(
    *, kind: ToolKind, name: str | None = None, always: bool = False, extra_arguments: bool = False
) -> Callable[[ToolFunc], ToolFunc]:
    """Mark an async function ``(ctx: ToolContext, **typed args) -> ToolOutput`` as a tool; ``always``: offer
    it on every model call (the everyday read tools), not only when a question needs it; ``extra_arguments``:
    ignore arguments it does not take instead of refusing the call (a tool whose arguments change nothing)."""

    def mark(func: ToolFunc) -> ToolFunc:
        setattr(func, _TOOL_ATTR, build_tool(func, kind=kind, name=name, always=always,
                                             extra_arguments=extra_arguments))
        return func

    return mark


def build_tool(
    func: ToolFunc, *, kind: ToolKind, name: str | None = None, always: bool = False, extra_arguments: bool = False
) -> Tool:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"tool {func.__name__} must be async")
    doc = inspect.getdoc(func) or ""
    description, arg_docs = _split_docstring(doc)
    hints = get_type_hints(func)
    params = list(inspect.signature(func).parameters.values())[1:]  # first is the ToolContext
    fields: dict[str, Any] = {}
    for param in params:
        annotation = hints.get(param.name, str)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, Field(default, description=arg_docs.get(param.name)))
    model = create_model(
        f"{func.__name__}_arguments", __config__=ConfigDict(extra="ignore" if extra_arguments else "forbid"), **fields
    )
    return Tool(name=name or func.__name__, kind=kind, description=description, arguments=model, func=func,
                always=always)


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Description = text before ``Args:``; each ``name: text`` line under it documents an argument."""
    head, _, args_block = doc.partition("\nArgs:")
    arg_docs: dict[str, str] = {}
    current: str | None = None
    for line in args_block.splitlines():
        match = re.match(r"^\s{2,}(\w+):\s*(.*)$", line)
        if match:
            current = match.group(1)
            arg_docs[current] = match.group(2).strip()
        elif current and line.strip():
            arg_docs[current] += " " + line.strip()
    return " ".join(head.split()), arg_docs


class ToolRegistry:
    """Tools by name; the agent offers :meth:`specs` to the model and dispatches calls by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self.executors: dict[str, ActionExecutor] = {}  # approved non-SQL work, by operation (core.approvals.executors)
        self._specs: tuple[ToolSpec, ...] | None = None  # built once: pydantic schema generation is per-turn hot
        self._withheld: dict[str, Tool] = {}  # READ tools in [llm] disabled_tools: for people's commands only
        for t in tools:
            self.add(t)

    def add(self, new: Tool) -> None:
        if new.name in self._tools:
            raise ValueError(f"tool {new.name} registered twice")
        self._tools[new.name] = new
        self._specs = None

    def add_module(self, module: ModuleType) -> None:
        for value in vars(module).values():
            found = getattr(value, _TOOL_ATTR, None)
            if isinstance(found, Tool):
                self.add(found)
            operation = executor_operation(value)
            if operation is not None:
                if operation in self.executors:
                    raise ValueError(f"executor for {operation!r} registered twice")
                self.executors[operation] = value

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools))
            raise ModelHint(f"There is no tool named {name[:60]!r}. Available tools: {known}.") from None

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def without(self, names: Iterable[str]) -> ToolRegistry:
        """The same tools and executors minus ``names``; an unknown name is a config error, not a no-op."""
        from core.errors import ConfigError

        drop = set(names)
        unknown = sorted(drop - set(self._tools))
        if unknown:
            raise ConfigError(f"llm.disabled_tools: unknown tool(s) {', '.join(unknown)}; "
                              f"the tools are {', '.join(self.names)}")
        kept = ToolRegistry(t for name, t in self._tools.items() if name not in drop)
        kept.executors = dict(self.executors)  # approved work already pending must still be able to run
        reads = {n: t for n, t in self._tools.items() if n in drop and t.kind is ToolKind.READ}
        kept._withheld = self._withheld | reads
        return kept

    def for_command(self, name: str) -> Tool:
        """The tool a person's slash command (``/sql``, ``/tables``, ``/health``, an edit) runs.

        ``[llm] disabled_tools`` is about what the model is offered, so a disabled READ tool still serves its
        command, with the same guard and role. A disabled change tool stays off for people too: switching
        ``propose_change`` off means no changes from chat, not "only by typing /sql"."""
        found = self._withheld.get(name)
        return found if found is not None and name not in self._tools else self.get(name)

    def is_always(self, name: str) -> bool:
        """Whether ``name`` is a registered tool offered on every call."""
        found = self._tools.get(name)
        return found is not None and found.always

    def specs(self) -> list[ToolSpec]:
        if self._specs is None:
            self._specs = tuple(t.spec() for t in self._tools.values())
        return list(self._specs)


ENTRY_POINT_GROUP = "pgbot.tools"
BUILTIN_TOOL_MODULES = (
    "core.tools.query", "core.tools.schema", "core.tools.databases", "core.tools.changes", "core.tools.clarify",
    "core.tools.export", "core.tools.chart", "core.tools.diagnostics", "core.tools.migrations", "core.tools.backups",
    "core.tools.schedules", "core.tools.more",
)


def load_tools(*, extra_modules: Iterable[str] = ()) -> ToolRegistry:
    """Built-in tools plus any module registered in the ``pgbot.tools`` entry-point group."""
    import importlib

    registry = ToolRegistry()
    names = list(BUILTIN_TOOL_MODULES) + list(extra_modules)
    names += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.value not in names]
    for module_name in names:
        registry.add_module(importlib.import_module(module_name))
    return registry

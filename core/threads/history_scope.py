"""What of a thread's history one person's turn may send to the model: their own scope's turns, whole; the
rest with everything that can carry rows withheld.

A thread is shared: a DBA and a read-only colleague can both talk in it. Each stored turn says which
(database, role) scopes its text may draw on (``ChatTurn.read_as``). A turn is shown as it was only to a
viewer whose scope is the single scope it carries; to anyone else (another role, the same role name on
another database, the same person after their mapping changed, or a turn stored before scopes existed):

* questions (user turns) stay: people typed them, and follow-ups need them;
* tool results, answers, clarifications and slash-command summaries become a short marker;
* tool calls keep their SQL with literals and comments removed (``$1`` …, as pg_stat_statements shows it),
  since a model that read rows can write them into a literal or a comment; other arguments are dropped
  and call ids replaced. Names the model chose (identifiers in the SQL, tool names) stay: the structure is
  what a follow-up needs, and is what the thread already shows under the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pglast.parser import ParseError, scan

from core.llm.base import ChatTurn, ReadScope, ToolCall

SQL_ARGUMENTS = frozenset({"sql", "up_sql", "down_sql"})  # tool arguments that hold SQL (query, change, migration)
MAX_MASKED_SQL_CHARS = 20_000  # longer SQL from another scope is withheld whole rather than scanned
WITHHELD_ARGUMENT = "(withheld)"
_CONSTANTS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST", "ICONST", "FCONST"})
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def is_own(turn: ChatTurn, viewer: ReadScope) -> bool:
    """Whether ``turn`` drew only on results ``viewer`` may read (untagged turns never do)."""
    return bool(turn.read_as) and all(scope == viewer for scope in turn.read_as)


class StoredHistory:
    """A thread's history as stored, which yields turns only through a viewer: a store's one-round-trip
    ``load`` cannot hand another role's rows to a caller that forgets to filter."""

    __slots__ = ("_turns",)

    def __init__(self, turns: Sequence[ChatTurn]) -> None:
        self._turns = tuple(turns)

    def visible_to(self, viewer: ReadScope) -> list[ChatTurn]:
        return visible_history(self._turns, viewer)

    def __bool__(self) -> bool:
        return bool(self._turns)


def visible_history(turns: Sequence[ChatTurn], viewer: ReadScope) -> list[ChatTurn]:
    """``turns`` as ``viewer``'s turn may send them to the model (see the module docstring)."""
    ids: dict[str, str] = {}
    visible: list[ChatTurn] = []
    for turn in turns:
        visible.append(turn if is_own(turn, viewer) else _withheld(turn, ids))
    return visible


def who(read_as: Sequence[ReadScope]) -> str:
    """``role "dba" on database "hr"`` (and … for several); a turn with no scope predates the tagging."""
    if not read_as:
        return "another person's role (recorded before pgbot kept roles in thread history)"
    return " and ".join(
        (f'role "{s.role}"' if s.role is not None else "pgbot's login role") + f' on database "{s.database}"'
        for s in read_as
    )


def withheld_marker(read_as: Sequence[ReadScope], *, what: str = "result") -> str:
    return f"({what} read as {who(read_as)} withheld: run it again to see what your role can read)"


def mask_sql(sql: str) -> str:
    """``sql`` with every literal replaced by ``$n`` and comments and spacing normalised (the lexer only, so
    any length of nesting is safe); SQL that does not lex, or is very long, is withheld whole."""
    if len(sql) > MAX_MASKED_SQL_CHARS:
        return WITHHELD_ARGUMENT
    try:
        tokens = scan(sql)
    except ParseError:
        return WITHHELD_ARGUMENT
    parts: list[str] = []
    last_end = -1
    placeholders = 0
    for token in tokens:
        if token.name in _COMMENTS:
            continue
        if parts and token.start > last_end + 1:
            parts.append(" ")  # any gap (spaces, newlines, a comment) becomes one space
        if token.name in _CONSTANTS:
            placeholders += 1
            parts.append(f"${placeholders}")
        else:
            parts.append(sql[token.start:token.end + 1])
        last_end = token.end
    return "".join(parts)


def _withheld(turn: ChatTurn, ids: dict[str, str]) -> ChatTurn:
    marker = withheld_marker(turn.read_as)
    match turn.role:
        case "user":
            return turn
        case "tool":
            return turn.model_copy(update={"content": marker, "tool_call_id": _new_id(turn.tool_call_id, ids),
                                           "name": _plain_name(turn.name)})
        case "assistant":
            calls = tuple(_withheld_call(call, ids) for call in turn.tool_calls)
            text = withheld_marker(turn.read_as, what="answer from results") if (turn.content or "").strip() else ""
            return turn.model_copy(update={"content": text, "tool_calls": calls})
    return turn.model_copy(update={"content": marker})


def _withheld_call(call: ToolCall, ids: dict[str, str]) -> ToolCall:
    try:
        arguments = json.loads(call.arguments)
    except (ValueError, RecursionError):
        arguments = None
    kept: dict[str, str] = {}
    if isinstance(arguments, dict):  # only SQL survives; any other argument (or key) could carry rows
        kept = {key: mask_sql(value) if isinstance(value, str) else WITHHELD_ARGUMENT
                for key, value in arguments.items() if key in SQL_ARGUMENTS}
    return ToolCall(id=_new_id(call.id, ids) or "withheld", name=_plain_name(call.name) or "unknown_tool",
                    arguments=json.dumps(kept, ensure_ascii=False))


def _new_id(old: str | None, ids: dict[str, str]) -> str | None:
    """Call ids are the model's text too: replace them, keeping each call paired with its result."""
    if old is None:
        return None
    if old not in ids:
        ids[old] = f"withheld_{len(ids) + 1}"
    return ids[old]


def _plain_name(name: str | None) -> str | None:
    return name if name is None or _PLAIN_NAME.fullmatch(name) else "unknown_tool"

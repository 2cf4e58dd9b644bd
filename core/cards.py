"""What an approval card says to people: the question, a before → after diff, who may approve, its state.

Core words the card; adapters lay it out and turn identities into their platform's mentions (a ``name``
callback). What the model is told about the same change is separate (the tool's ``ToolOutput.text``, whole
rows for it to reason on): people get one line per changed row with only the columns that change, e.g.
``id 42: status shipped → cancelled``, in a monospace block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from core.card_state import Approvers, CardState, CardStatus
from core.config import DISCORD_ROLE, DatabaseSettings
from core.display import duration_text, format_value, zone_of
from core.messages import ApprovalPrompt, Cell, ResultTable

DIFF_ROWS = 5  # lines of the diff on a card; the rest is counted
DIFF_VALUE = 40  # characters of one value in a diff line
DETAIL_CHARS = 300  # a failure or progress line on the state line
WAITING = "Nothing has run yet"  # the tools' last line for the model; the card's state line says it instead

_LABELS = {
    "InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE",
    "SelectStmt": "SELECT (changing data)", "IndexStmt": "CREATE INDEX", "CreateStmt": "CREATE TABLE",
    "DoStmt": "DO block", "VacuumStmt": "VACUUM", "GrantStmt": "GRANT", "GrantRoleStmt": "GRANT",
    "TruncateStmt": "TRUNCATE", "RenameStmt": "RENAME", "CreateRoleStmt": "CREATE ROLE",
    "AlterRoleStmt": "ALTER ROLE", "ViewStmt": "CREATE VIEW", "CreateTableAsStmt": "CREATE TABLE AS",
}
_PREPOSITION = {"INSERT": "into", "DELETE": "from", "UPDATE": "in", "MERGE": "into"}
_ICONS = {CardStatus.PENDING: "🔒", CardStatus.RUNNING: "⏳", CardStatus.APPLIED: "✅",
          CardStatus.REJECTED: "🚫", CardStatus.FAILED: "❌", CardStatus.EXPIRED: "⌛"}

Name = Callable[[str], str]
"""An identity (``slack:U…``) as the platform names a person: a mention, else the identity itself."""


def statement_label(statement_type: str) -> str:
    """``UpdateStmt`` → ``UPDATE``, ``AlterTableStmt`` → ``ALTER TABLE``."""
    if statement_type in _LABELS:
        return _LABELS[statement_type]
    words = re.findall(r"[A-Z][a-z]*", statement_type.removesuffix("Stmt"))
    return " ".join(words).upper() or statement_type.upper()


def approval_question(
    *, statement_type: str, rows: int | None, tables: Sequence[str], database: str, summary: str, plain_sql: bool
) -> str:
    """The card's header: ``Approve: UPDATE 3 rows in customers?``; other work (a backup, a migration) asks
    with its summary."""
    if not plain_sql:
        return f"Approve: {summary.rstrip('.?')}?"
    label = statement_label(statement_type)
    where = ", ".join(tables[:2]) + (f" and {len(tables) - 2} more" if len(tables) > 2 else "")
    if rows is not None and label in _PREPOSITION:
        amount = f"{rows:,} row{'s' if rows != 1 else ''}"
        return f"Approve: {label} {amount}" + (f" {_PREPOSITION[label]} {where}?" if where else "?")
    return f"Approve: {label} on {where or database}?"


@dataclass(frozen=True, slots=True)
class RowDiff:
    """Before → after of the changed columns, one line per row key, and what is left out."""

    lines: tuple[str, ...]
    note: str = ""


def row_diff(
    before: ResultTable | None, after: ResultTable | None, *, keys: Sequence[str] = (),
    set_columns: Sequence[str] = (), rows_affected: int | None = None, max_rows: int = DIFF_ROWS,
) -> RowDiff | None:
    """Pair the rows as they are with the rows as the change leaves them (by primary key, else by the columns
    the change does not set) and show only what changes. None when the two cannot be paired."""
    if before is None or after is None or not before.rows or not after.rows or before.columns != after.columns:
        return None
    columns = before.columns
    pair_on = [c for c in keys if c in columns] if keys and all(c in columns for c in keys) else []
    label_on = list(pair_on)
    if not pair_on:
        pair_on = [c for c in columns if c not in set(set_columns)] if set_columns else []
        label_on = pair_on[:1]
    if not pair_on:
        return None
    at = [columns.index(c) for c in pair_on]
    old = {tuple(row[i] for i in at): row for row in before.rows}
    lines: list[str] = []
    unchanged = 0
    for number, row in enumerate(after.rows, start=1):
        was = old.get(tuple(row[i] for i in at))
        if was is None:
            continue
        changes = [f"{name} {_shown(was[i], before, i)} → {_shown(row[i], after, i)}"
                   for i, name in enumerate(columns) if was[i] != row[i]]
        if not changes:
            unchanged += 1
            continue
        if len(lines) < max_rows:
            lines.append(f"{_label(label_on, columns, row, after, number)}: {', '.join(changes)}")
    if not lines:
        return None if not unchanged else RowDiff(lines=(), note=_rows(unchanged) + " would not change")
    notes = []
    total = rows_affected if rows_affected is not None else after.row_count
    if total > len(lines):
        notes.append(f"showing {len(lines):,} of {total:,} rows")
    if unchanged:
        notes.append(f"{_rows(unchanged)} shown would not change")
    return RowDiff(lines=tuple(lines), note=" · ".join(notes))


def _rows(count: int) -> str:
    return f"{count:,} row{'s' if count != 1 else ''}"


def _label(names: Sequence[str], columns: Sequence[str], row: Sequence[Cell], table: ResultTable, number: int) -> str:
    if not names:
        return f"row {number}"
    return ", ".join(f"{name} {_shown(row[columns.index(name)], table, columns.index(name))}" for name in names)


def _shown(value: Cell, table: ResultTable, index: int) -> str:
    """One value as the result tables show it (numbers grouped, times in the session's zone, NULL as —)."""
    kind = table.kinds[index] if len(table.kinds) == len(table.columns) else "text"
    text = format_value(value, kind=kind, name=table.columns[index], tz=zone_of(table.time_zone)[0])
    text = " ".join(text.split()) if isinstance(value, str) else text
    if isinstance(value, str) and (value == "" or value != value.strip() or text == "—"):
        text = repr(value)  # '' and ' x' and the text '—' stay distinguishable from NULL and from each other
    return text if len(text) <= DIFF_VALUE else text[: DIFF_VALUE - 1] + "…"


def approvers_of(settings: DatabaseSettings, *, requested_by: str) -> Approvers:
    """The approvers a card names; the requester is left out unless self-approval is on."""
    rules = settings.approvers
    skip = set() if rules.allow_self_approval else {requested_by}
    roles = tuple(dict.fromkeys(rules.roles))
    mapped = settings.roles or {}
    holders = tuple(k for k, role in mapped.items() if role in roles and k != "*" and k not in skip
                    and k not in rules.users)
    return Approvers(people=tuple(p for p in dict.fromkeys(rules.users) if p not in skip), roles=roles,
                     role_holders=holders, anyone_mapped=mapped.get("*") in roles)


def who_may_approve(approvers: Approvers, *, name: Callable[[str], str | None]) -> str:
    """``<@U1>, <@U2> or anyone with database role dba (<@U3>)``; ``name`` returns None for identities of
    another platform, which are counted instead of shown."""
    if approvers.nobody:
        return "nobody yet (no approvers are configured)"
    shown, elsewhere = _names(approvers.people, name)
    parts = list(shown)
    for role in approvers.roles:
        text = f"anyone with database role {role}"
        holders, _ = _names(approvers.role_holders, name)
        if holders and len(approvers.roles) == 1:
            text += f" ({', '.join(holders)})"
        parts.append(text)
    if elsewhere:
        parts.append(f"{elsewhere} approver{'s' if elsewhere != 1 else ''} on another platform")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _names(keys: Sequence[str], name: Callable[[str], str | None]) -> tuple[list[str], int]:
    shown, elsewhere = [], 0
    for key in keys:
        text = name(key)
        if text is None:
            elsewhere += 1
        else:
            shown.append(text)
    return shown, elsewhere


def mentionable(approvers: Approvers) -> tuple[str, ...]:
    """The identities and groups the card may notify: approvers by name and holders of approver roles."""
    return tuple(dict.fromkeys((*approvers.people, *approvers.role_holders)))


def with_mentions(text: str, identities: Sequence[str], *, mention: Callable[[str], str | None]) -> str:
    """``text`` with the identities core itself named in a reply (``Reply.mentions``) shown as the platform's
    mentions; only these, so text from the model or the database never turns into one."""
    for identity in identities:
        shown = mention(identity)
        if shown is not None:
            text = text.replace(identity, shown)
    return text


def is_group(key: str) -> bool:
    return key.startswith(DISCORD_ROLE)


def state_text(state: CardState, *, name: Name, clock: Callable[[float], str], elapsed_s: float | None = None) -> str:
    """The card's one state line: ``Approved by @x — running``, ``Applied: UPDATE 3 in 12 ms``, ``Rejected by
    @y``, ``Failed: … (nothing changed)``, ``Expired 14:05``."""
    icon = _ICONS[state.status]
    detail = _detail(state.detail)
    match state.status:
        case CardStatus.PENDING:
            return f"{icon} Waiting for approval · expires {clock(state.at)}"
        case CardStatus.RUNNING:
            text = f"{icon} Approved by {name(state.by)} — running"
            if detail:
                text += f": {detail}"
            if elapsed_s is not None and elapsed_s >= 1:
                text += f" · {duration_text(elapsed_s * 1000)}"
            return text
        case CardStatus.APPLIED:
            took = f" in {duration_text(state.duration_ms)}" if state.duration_ms is not None else ""
            return f"{icon} Applied: {detail or 'done'}{took} — approved by {name(state.by)}"
        case CardStatus.REJECTED:
            return f"{icon} Rejected by {name(state.by)}"
        case CardStatus.FAILED:
            outcome = "nothing changed" if state.nothing_changed else (
                "it ran outside a transaction: check what it left")
            by = f" — approved by {name(state.by)}" if state.by else ""
            return f"{icon} Failed: {detail.rstrip('.')} ({outcome}){by}"
    return f"{icon} Expired {clock(state.at)}"


def _detail(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= DETAIL_CHARS else flat[: DETAIL_CHARS - 1] + "…"


def people_lines(text: str) -> tuple[str, ...]:
    """A tool's description of a change, for the card: its lines without the "Nothing has run yet" one, which
    the state line replaces."""
    return tuple(line for line in text.splitlines() if line.strip() and not line.startswith(WAITING))


def for_people(prompt: ApprovalPrompt, *, model_text: str) -> tuple[ApprovalPrompt, str]:
    """The card and the reply's text for people. Tools that give no ``details`` of their own (backups,
    migrations, index builds) describe their work in prose, which people read as it is; the line saying
    nothing has run yet stays in the text (the terminal shows it), while cards say it in their state line."""
    details = prompt.details or people_lines(model_text)
    waiting = [line for line in model_text.splitlines() if line.startswith(WAITING)]
    return replace(prompt, details=details), "\n".join([*details, *waiting[-1:]])

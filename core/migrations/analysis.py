"""What each statement of a migration does to a live database: its lock, table rewrites, data loss.

Everything here comes from the parse tree (pglast) plus the guard's lock knowledge, so it works before the
migration ever runs; the notes are plain language for the approval preview and ``pgbot migrate up``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pglast import ast, enums, parse_sql, split
from pglast.parser import ParseError

from core.approvals.audit import SECRET_BEARING
from core.db.preview import LOCK_EFFECT
from core.errors import GuardError
from core.sqlguard import Classification, SqlGuard, StatementKind, must_run_outside_transaction

_AT = enums.AlterTableType
_REWRITES = {_AT.AT_SetTableSpace: "moves the table to another tablespace, rewriting it",
             _AT.AT_SetLogged: "rewrites the table (SET LOGGED writes it all to the WAL)",
             _AT.AT_SetUnLogged: "rewrites the table (SET UNLOGGED)"}
# Defaults that differ per row: adding a column with one rewrites every row (PostgreSQL 11+ stores others once).
_VOLATILE = {"random", "clock_timestamp", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
             "uuid_generate_v4", "nextval", "timeofday", "txid_current", "random_normal"}
_SERIAL = {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"}
_DATA_OBJECTS = {"TABLE": "table", "MATVIEW": "materialized view", "SCHEMA": "schema",
                 "FOREIGN_TABLE": "foreign table"}


@dataclass(frozen=True, slots=True)
class StatementNote:
    """One statement with what it locks, rewrites or destroys."""

    sql: str
    classification: Classification
    outside_transaction: bool
    effects: tuple[str, ...] = ()  # rewrites, scans, index builds: why it may take long
    data_loss: tuple[str, ...] = ()  # ⚠ lines, shown loudly

    @property
    def lock_text(self) -> str:
        lock = self.classification.lock
        if lock is None:
            return "takes no table lock worth noting"
        objects = ", ".join(self.classification.tables) or "the objects it names"
        effect = LOCK_EFFECT.get(lock)
        return f"{lock} lock on {objects}" + (f" ({effect})" if effect else "")


@dataclass(frozen=True, slots=True)
class MigrationAnalysis:
    statements: tuple[StatementNote, ...]
    marked_no_transaction: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def outside_transaction(self) -> bool:
        return self.marked_no_transaction or any(s.outside_transaction for s in self.statements)

    @property
    def data_loss(self) -> tuple[str, ...]:
        return tuple(line for s in self.statements for line in s.data_loss)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(sorted({t for s in self.statements for t in s.classification.tables}))

    @property
    def strongest_lock(self) -> str | None:
        order = list(LOCK_EFFECT)  # strongest first
        locks = [s.classification.lock for s in self.statements if s.classification.lock in LOCK_EFFECT]
        return min(locks, key=order.index) if locks else None

    @property
    def kind(self) -> str:
        kinds = {s.classification.kind for s in self.statements}
        return StatementKind.WRITE.value if kinds == {StatementKind.WRITE} else StatementKind.DDL.value

    def describe(self, *, indent: str = "") -> list[str]:
        """Numbered statements, each with its lock, effects and data-loss flags."""
        lines = []
        for number, note in enumerate(self.statements, 1):
            lines.append(f"{indent}{number}. {shorten(note.sql)}")
            lines.append(f"{indent}   Lock: {note.lock_text}.")
            lines += [f"{indent}   {effect}" for effect in note.effects]
            lines += [f"{indent}   {loss}" for loss in note.data_loss]
        return lines


def shorten(sql: str, limit: int = 160) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_statements(sql: str, guard: SqlGuard) -> list[str]:
    """The statements of a migration file, comments dropped; a syntax error says where."""
    try:
        statements = [s for s in split(sql) if s.strip()]
    except ParseError:
        guard.classify(sql)  # raises the guard's GuardError with line and column
        raise GuardError("Postgres could not parse this SQL.") from None
    return statements


_IRREVERSIBLE_RE = re.compile(r"^\s*--\s*irreversible\b", re.IGNORECASE | re.MULTILINE)


def is_irreversible(sql: str, guard: SqlGuard) -> bool:
    """A down file that holds no statement, only a ``-- irreversible: <why>`` comment (e.g. after
    ``ALTER TYPE ... ADD VALUE``, which PostgreSQL cannot take back): rolling back is refused, said plainly."""
    return _IRREVERSIBLE_RE.search(sql) is not None and not split_statements(sql, guard)


def analyse(sql: str, guard: SqlGuard, *, marked_no_transaction: bool = False) -> MigrationAnalysis:
    """Classify every statement with the guard (changes only) and explain its effects."""
    statements = split_statements(sql, guard)
    if not statements:
        raise GuardError("The migration holds no SQL statement (it is empty or only comments).")
    notes = []
    for number, text in enumerate(statements, 1):
        try:
            checked = guard.check_change(text)
        except GuardError as exc:
            raise GuardError(f"Statement {number} ({shorten(text, 80)}): {exc.user_message}") from None
        if checked.statement_type in SECRET_BEARING:  # files live in git and in the audit trail, unredacted
            raise GuardError(f"Statement {number} ({checked.statement_type.removesuffix('Stmt')}) may carry a "
                             "password or connection string, which must not be written into migration files; "
                             "run it as a one-off change instead.")
        node = parse_sql(text)[0].stmt
        assert isinstance(node, ast.Node)
        effects, losses = _effects(node)
        notes.append(StatementNote(sql=text, classification=checked,
                                   outside_transaction=must_run_outside_transaction(checked),
                                   effects=tuple(effects), data_loss=tuple(losses)))
    return MigrationAnalysis(statements=tuple(notes), marked_no_transaction=marked_no_transaction)


def _qualified(names: Iterable[object]) -> str:
    return ".".join(n.sval or "" for n in names if isinstance(n, ast.String))


def _relation(rv: object) -> str:
    if not isinstance(rv, ast.RangeVar):
        return "?"
    return f"{rv.schemaname}.{rv.relname}" if rv.schemaname else str(rv.relname)


def _function_names(node: ast.Node | None) -> set[str]:
    found: set[str] = set()
    stack: list[object] = [node]
    while stack:  # iterative: a deep expression must not hit Python's recursion limit
        item = stack.pop()
        if isinstance(item, ast.FuncCall) and item.funcname and isinstance(item.funcname[-1], ast.String):
            found.add((item.funcname[-1].sval or "").lower())
        if isinstance(item, ast.Node):
            stack.extend(getattr(item, attr) for attr in item)
        elif isinstance(item, tuple | list):
            stack.extend(item)
    return found


def _effects(node: ast.Node) -> tuple[list[str], list[str]]:
    effects: list[str] = []
    losses: list[str] = []
    match node:
        case ast.AlterTableStmt():
            table = _relation(node.relation)
            for cmd in node.cmds or ():
                if isinstance(cmd, ast.AlterTableCmd):
                    _alter_table_cmd(table, cmd, effects, losses)
        case ast.IndexStmt():
            if node.concurrent:
                effects.append("Builds the index without blocking writes (slower; cannot run in a transaction; "
                               "a failure leaves an INVALID index to drop).")
            else:
                effects.append(f"Builds the index by reading all of {_relation(node.relation)}: writes to it wait "
                               "until the build ends (CREATE INDEX CONCURRENTLY avoids that on busy tables).")
        case ast.DropStmt():
            kind = node.removeType.name.removeprefix("OBJECT_") if node.removeType is not None else ""
            names = [_qualified(o) if isinstance(o, tuple | list) else _qualified([o]) for o in node.objects or ()]
            if kind in _DATA_OBJECTS:
                for name in names:
                    what = _DATA_OBJECTS[kind]
                    losses.append(f"⚠ DATA LOSS: drops {what} {name} and all its data.")
            if node.behavior == enums.DropBehavior.DROP_CASCADE:
                losses.append("⚠ DATA LOSS: CASCADE also drops every object that depends on "
                              f"{', '.join(names)} (views, foreign keys, columns of a dropped type).")
        case ast.TruncateStmt():
            for rel in node.relations or ():
                losses.append(f"⚠ DATA LOSS: TRUNCATE empties table {_relation(rel)}.")
        case ast.DeleteStmt():
            scope = "" if node.whereClause is not None else " (every row: there is no WHERE)"
            losses.append(f"⚠ DATA LOSS: deletes rows from {_relation(node.relation)}{scope}.")
        case ast.UpdateStmt():
            losses.append(f"⚠ DATA CHANGE: overwrites values in {_relation(node.relation)}; the old values are "
                          "only restorable if the down migration can compute them.")
        case ast.VacuumStmt() | ast.ClusterStmt():
            if isinstance(node, ast.ClusterStmt) or any(
                    isinstance(o, ast.DefElem) and o.defname == "full" for o in node.options or ()):
                effects.append("Rewrites the whole table while holding its lock.")
        case ast.RenameStmt():
            effects.append("Queries and application code that use the old name stop working.")
        case ast.AlterEnumStmt():
            if node.newVal is not None:
                effects.append("A value added to an enum cannot be removed again by a down migration.")
    return effects, losses


def _alter_table_cmd(table: str, cmd: ast.AlterTableCmd, effects: list[str], losses: list[str]) -> None:
    column = f"{table}.{cmd.name}" if cmd.name else table
    match cmd.subtype:
        case _AT.AT_AddColumn if isinstance(cmd.def_, ast.ColumnDef):
            _add_column(table, cmd.def_, effects)
        case _AT.AT_DropColumn:
            losses.append(f"⚠ DATA LOSS: drops column {column} and its data.")
        case _AT.AT_AlterColumnType:
            target = ""
            if isinstance(cmd.def_, ast.ColumnDef) and cmd.def_.typeName is not None:
                target = f" to {_qualified(cmd.def_.typeName.names or ()).removeprefix('pg_catalog.')}"
            effects.append(f"Changing the type of {column} usually rewrites the table and its indexes "
                           "(not for binary-compatible changes such as varchar(n) to text).")
            losses.append(f"⚠ POSSIBLE DATA LOSS: converts {column}{target}; a narrower type truncates or "
                          "rounds values, or fails on those that do not fit.")
        case _AT.AT_SetNotNull:
            effects.append(f"SET NOT NULL scans all of {table} for NULLs while holding the lock (no rewrite).")
        case _AT.AT_AddConstraint if isinstance(cmd.def_, ast.Constraint):
            _add_constraint(table, cmd.def_, effects)
        case _AT.AT_ValidateConstraint:
            effects.append(f"Validating scans {table}, but reads and writes continue meanwhile.")
        case subtype if subtype in _REWRITES:
            effects.append(_REWRITES[subtype].capitalize() + ".")


def _add_column(table: str, column: ast.ColumnDef, effects: list[str]) -> None:
    name = f"{table}.{column.colname}"
    type_name = _qualified(column.typeName.names or ()) if column.typeName is not None else ""
    constraints = [c for c in column.constraints or () if isinstance(c, ast.Constraint)]
    default = next((c.raw_expr for c in constraints if c.contype == enums.ConstrType.CONSTR_DEFAULT), None)
    volatile = _function_names(default) & _VOLATILE
    if type_name in _SERIAL or any(c.contype in (enums.ConstrType.CONSTR_IDENTITY,
                                                 enums.ConstrType.CONSTR_GENERATED) for c in constraints):
        effects.append(f"Adding {name} with a serial, identity or stored generated value rewrites every row of "
                       f"{table}.")
    elif volatile:
        effects.append(f"Adding {name} with a volatile default ({', '.join(sorted(volatile))}()) rewrites every "
                       f"row of {table}.")
    elif default is None:
        effects.append(f"Adding {name} does not rewrite the table (existing rows read NULL).")
    else:
        effects.append(f"Adding {name} does not rewrite the table (a constant default is stored once).")
    not_null = column.is_not_null or any(c.contype == enums.ConstrType.CONSTR_NOTNULL for c in constraints)
    if not_null and default is None:
        effects.append(f"{name} is NOT NULL without a DEFAULT: this fails if {table} has rows.")
    for constraint in constraints:
        _add_constraint(table, constraint, effects)


def _add_constraint(table: str, constraint: ast.Constraint, effects: list[str]) -> None:
    kind = constraint.contype
    if kind in (enums.ConstrType.CONSTR_CHECK, enums.ConstrType.CONSTR_FOREIGN) and not constraint.skip_validation:
        effects.append(f"The new constraint is checked against every row of {table} while the lock is held "
                       "(NOT VALID now and VALIDATE CONSTRAINT later keeps the lock short).")
    elif kind in (enums.ConstrType.CONSTR_PRIMARY, enums.ConstrType.CONSTR_UNIQUE) and not constraint.indexname:
        effects.append(f"Builds a unique index on {table}: reads all rows while writes wait.")

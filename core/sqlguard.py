"""The SQL guard: classify one statement with the Postgres parser before pgbot runs it.

Why three layers, and why all three stay:

1. **This guard** parses with pglast (libpg_query, the parser Postgres itself uses) and walks the whole
   tree. Keyword filters are bypassed again and again (data-modifying CTEs, several statements in one
   string, side-effecting functions hidden in a subquery, ``DROP TABLE`` inside a string literal); a
   parse tree is not fooled by any of that. The guard decides the path a statement may take (run now,
   or wait for approval) and explains refusals in words a chat user understands.
2. **The read-only transaction** around every statement on the read path: whatever the guard misses
   that writes still fails inside Postgres.
3. **The mapped role** (``SET LOCAL ROLE``): every statement, approved changes included, runs with the
   chat user's least-privilege role, so Postgres privileges bound what any statement can do.

The guard cannot see inside function bodies, ``DO`` blocks or SQL run dynamically by user-defined
functions; layers 2 and 3 (and approval, for changes) cover those. So the guard classifies, Postgres
enforces: none of the three layers is enough alone.

Functions: the names below (``_DENIED``) only *explain* refusals and bound the change path. On the read
path the decision is an allow-list checked against the database's own ``pg_proc`` just before the statement
runs (:mod:`core.db.functions`), from the calls this module records in :attr:`Classification.calls`.

Checked statements: :class:`CheckedSql` is the only SQL ``Database.fetch`` and ``plan``, ``export_csv`` and
``preview_change`` take (and ``PostgresDatabase.run``'s ``guarded``). It is made by :meth:`SqlGuard.check_read` /
:meth:`SqlGuard.check_change`, or by :meth:`CheckedSql.trusted` for constant SQL pgbot's own source spells out;
any other construction (``dataclasses.replace`` included) raises TypeError, and
``tests/core/test_checked_sql.py`` checks that every ``trusted`` call gets a literal.

Size: libpg_query recurses in C on left-deep trees (``1+1+…``, ``x IS NULL IS NULL …``, ``… UNION …``) and
overflows the C stack at ~15,000 levels (a segfault, not an exception). :func:`check_size` refuses text
longer than ``max_sql_chars`` and text whose scanner-based depth estimate passes ``MAX_DEPTH`` before the
parser ever sees it; every other pglast caller in pgbot goes through it too.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal, LiteralString

from pglast import ast, enums, parse_sql
from pglast.keywords import RESERVED_KEYWORDS
from pglast.parser import ParseError, scan

from core.errors import GuardError

__all__ = ["CheckedSql", "Classification", "FunctionCall", "SqlGuard", "StatementKind", "check_size",
           "must_run_outside_transaction"]

DEFAULT_MAX_SQL_CHARS = 20_000
SEEN_MAX, SEEN_MAX_CHARS = 256, 4_000  # SqlGuard's memo of verdicts: at most ~1 MB of SQL text
# Measured (pglast 7 / libpg_query 17, 8 MB stack): a segfault at ~15,400 chained UNIONs, ~23,700 chained
# binary operators or JOINs, ~32,600 casts, under 30,000 "IS NULL"s. The estimate below is an upper bound of
# the tree's depth, so 5,000 keeps a margin of three at least.
MAX_DEPTH = 5_000
# Tokens that never deepen the tree by themselves: names, constants, commas, parentheses (counted as depth),
# and AND/OR (Postgres flattens a chain of them into one list).
_FLAT_TOKENS = frozenset({"IDENT", "UIDENT", "SCONST", "USCONST", "ICONST", "FCONST", "BCONST", "XCONST",
                          "PARAM", "ASCII_44", "ASCII_59", "AND", "OR", "SQL_COMMENT", "C_COMMENT"})


class StatementKind(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    DDL = "ddl"
    ADMIN = "admin"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class Classification:
    """What one statement is, which relations it touches and which table lock it takes."""

    kind: StatementKind
    statement_type: str
    sql: str
    reason: str | None = None
    tables: tuple[str, ...] = ()
    lock: str | None = None
    functions: tuple[str, ...] = ()
    calls: tuple[FunctionCall, ...] = ()
    operators: tuple[tuple[str | None, str], ...] = ()  # (schema or None, operator name) of every operator used


# Set only while this module makes a CheckedSql: construction anywhere else is refused (see CheckedSql).
_MINTING: ContextVar[bool] = ContextVar("pgbot_checked_sql_minting", default=False)


@dataclass(frozen=True, slots=True)
class CheckedSql(Classification):
    """A statement that may reach Postgres: passed by the guard, or a constant pgbot itself wrote.

    The type is the proof, so no code path can hand Postgres unchecked text. ``path`` says which check it
    passed: ``read`` (``check_read``, or ``trusted``), ``change`` (``check_change``). ``is_trusted``: pgbot's
    own constant SQL (:meth:`trusted`), which skips the catalog's function check.
    """

    path: Literal["read", "change"] = "read"
    is_trusted: bool = False

    def __post_init__(self) -> None:
        if not _MINTING.get():
            raise TypeError("CheckedSql comes only from SqlGuard.check_read / check_change or CheckedSql.trusted")

    @staticmethod
    def trusted(sql: LiteralString) -> CheckedSql:
        """Constant read SQL written in pgbot's source (a health probe, the server version), never text from a
        user, a config file or the model: it is not parsed, and its functions are not checked against the
        catalog. ``tests/core/test_checked_sql.py`` fails on any call whose argument is not a literal or a
        module constant."""
        return _mint(Classification(kind=StatementKind.READ, statement_type="", sql=sql), path="read", is_trusted=True)

    @staticmethod
    def require(value: object, *, path: Literal["read", "change"], where: str) -> CheckedSql:
        """``value`` if it is a CheckedSql that passed ``path``'s check; else TypeError (a bug, never a user's
        mistake: mypy catches it first, this catches what slips past, e.g. ``Any``)."""
        if not isinstance(value, CheckedSql):
            raise TypeError(f"{where} takes a CheckedSql (SqlGuard.check_{path}, or CheckedSql.trusted for "
                            f"pgbot's own constant SQL), not {type(value).__name__}")
        if value.path != path:
            raise TypeError(f"{where} takes SQL checked for the {path} path; this passed check_{value.path}")
        return value


def _mint(classification: Classification, *, path: Literal["read", "change"], is_trusted: bool = False) -> CheckedSql:
    c = classification
    token = _MINTING.set(True)
    try:
        return CheckedSql(kind=c.kind, statement_type=c.statement_type, sql=c.sql, reason=c.reason, tables=c.tables,
                          lock=c.lock, functions=c.functions, calls=c.calls, operators=c.operators, path=path,
                          is_trusted=is_trusted)
    finally:
        _MINTING.reset(token)


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One function the statement calls by name, as Postgres will look it up: schema as written (None:
    resolved through search_path), exact name, and the argument count (None: unknown, any overload).

    ``via`` says how: ``call`` is ``f(x)``; ``field`` is ``(expr).f``, which Postgres runs as ``f(expr)``;
    ``row`` is ``alias.f``, which is ``f(alias)`` (a function taking the whole row) when no column ``f`` exists.
    """

    schema: str | None
    name: str
    nargs: int | None
    via: Literal["call", "field", "row"] = "call"

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


# Table lock modes, weakest first (Postgres docs, "Explicit Locking").
ACCESS_SHARE = "ACCESS SHARE"
ROW_SHARE = "ROW SHARE"
ROW_EXCLUSIVE = "ROW EXCLUSIVE"
SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
SHARE = "SHARE"
SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
EXCLUSIVE = "EXCLUSIVE"
ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
_LOCK_ORDER = (ACCESS_SHARE, ROW_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE,
               SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE)


def _strongest(*locks: str | None) -> str | None:
    present = [lock for lock in locks if lock is not None]
    return max(present, key=_LOCK_ORDER.index) if present else None


# Denied functions: (name patterns, why). Names are matched unqualified and lower-cased.
_DENIED: tuple[tuple[tuple[str, ...], str], ...] = (
    (("lo_*", "loread", "lowrite"),
     "large-object functions read or write server-side objects, even in a read-only transaction"),
    (("dblink*",), "it connects to other databases"),
    (("pg_read_file", "pg_read_binary_file", "pg_ls_*", "pg_stat_file", "pg_file_*"),
     "it reads or writes files on the database server"),
    (("pg_terminate_backend", "pg_cancel_backend"), "it stops other sessions"),
    (("pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal", "pg_promote", "pg_create_restore_point",
      "pg_backup_*", "pg_start_backup", "pg_stop_backup", "pg_wal_replay_*",
      "pg_log_backend_memory_contexts"),
     "it controls the database server"),
    (("set_config",), "it changes session settings, which could lift pgbot's limits"),
    (("pg_advisory_*", "pg_try_advisory_*"), "advisory locks can outlive the statement and block others"),
    (("nextval", "setval"), "it advances a sequence, a change that is never rolled back"),
    (("pg_notify",), "it sends notifications to other sessions"),
    (("pg_logical_emit_message",), "it writes to the write-ahead log"),
    (("pg_create_*_replication_slot", "pg_copy_*_replication_slot", "pg_drop_replication_slot",
      "pg_replication_slot_advance", "pg_replication_origin_*", "pg_logical_slot_*"),
     "it manages replication"),
    (("pg_stat_reset*", "pg_stat_statements_reset"), "it resets the server's statistics"),
    (("query_to_xml", "query_to_xml_and_xmlschema", "query_to_xmlschema", "cursor_to_xml",
      "cursor_to_xmlschema", "ts_stat", "crosstab*", "connectby", "pg_background_*", "table_to_xml*",
      "schema_to_xml*", "database_to_xml*"),
     "it runs SQL text the guard cannot inspect"),
    (("pg_import_system_collations",), "it creates collations (a catalog change)"),
)


# Denied on the read path only: inside an approved INSERT/UPDATE/DDL, advancing a sequence is the point
# (``INSERT ... VALUES (nextval('s'))``, ``DEFAULT nextval('s')``), and a person approves the statement.
_CHANGE_PATH_ALLOWED = frozenset({"nextval", "setval"})


def _deny_reason(call: FunctionCall) -> str | None:
    name = call.name.lower()
    if name == "ts_rewrite" and call.nargs == 2:  # ts_rewrite(tsquery, text) runs its text as a query
        return "it runs SQL text the guard cannot inspect"
    for patterns, why in _DENIED:
        if any(fnmatchcase(name, pattern) for pattern in patterns):
            return why
    return None


def _bare_names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(name.rsplit(".", 1)[-1].strip().lower() for name in names)


def _calls(nodes: list[ast.Node]) -> tuple[FunctionCall, ...]:
    """Every function the statement may call by name.

    Besides ``f(x)``, Postgres reads ``(x).f`` and ``alias.f`` as ``f(x)`` when no such column exists
    (attribute notation), so a field name is recorded as a possible one-argument call too.
    """
    found: dict[FunctionCall, None] = {}
    for n in nodes:
        if isinstance(n, ast.FuncCall) and n.funcname:
            parts = _names(n.funcname)
            if not parts:
                continue
            schema = parts[-2] if len(parts) >= 2 else None
            nargs = None if n.func_variadic else len(n.args or ())
            found[FunctionCall(schema, parts[-1], nargs)] = None
        elif isinstance(n, ast.ColumnRef) and n.fields and len(n.fields) >= 2:
            last = n.fields[-1]
            if isinstance(last, ast.String) and last.sval:
                found[FunctionCall(None, last.sval, 1, "row")] = None
        elif isinstance(n, ast.A_Indirection):
            for item in n.indirection or ():
                if isinstance(item, ast.String) and item.sval:
                    found[FunctionCall(None, item.sval, 1, "field")] = None
    return tuple(found)


_BETWEEN = {enums.A_Expr_Kind.AEXPR_BETWEEN, enums.A_Expr_Kind.AEXPR_NOT_BETWEEN,
            enums.A_Expr_Kind.AEXPR_BETWEEN_SYM, enums.A_Expr_Kind.AEXPR_NOT_BETWEEN_SYM}


def _implicit_equals(n: ast.Node) -> bool:
    """Postgres looks up ``=`` by name for ``CASE x WHEN y``, ``x IN (SELECT …)`` and ``JOIN … USING`` /
    ``NATURAL JOIN``, though the statement never writes it: a hostile ``=`` (say for text = integer, or an
    enum's own) would be picked by overload resolution, so these count as naming ``=``."""
    if isinstance(n, ast.CaseExpr):
        return n.arg is not None
    if isinstance(n, ast.SubLink):
        return n.subLinkType == enums.SubLinkType.ANY_SUBLINK and not n.operName
    if isinstance(n, ast.JoinExpr):
        return bool(n.usingClause) or bool(n.isNatural)
    return False


def _operators(nodes: list[ast.Node]) -> tuple[tuple[str | None, str], ...]:
    """(schema, name) of every operator the statement names (an operator is a function by another name)."""
    found: dict[tuple[str | None, str], None] = {}
    for n in nodes:
        if isinstance(n, ast.A_Expr) and n.kind in _BETWEEN:
            found[(None, "<=")] = found[(None, ">=")] = None
            continue
        if _implicit_equals(n):
            found[(None, "=")] = None
        names: list[str] = []
        if isinstance(n, ast.A_Expr):
            names = _names(n.name or ())
        elif isinstance(n, ast.SubLink) and n.operName:
            names = _names(n.operName)
        elif isinstance(n, ast.SortBy) and n.useOp:  # ORDER BY x USING op
            names = _names(n.useOp)
        if names:
            found[(names[-2] if len(names) >= 2 else None, names[-1])] = None
    return tuple(found)


# Statements refused on every path, with the reason shown to the user.
_SET_REASON = ("{label} is refused: session settings could lift pgbot's limits (timeouts, read-only, role); "
               "ask an admin to change them in the configuration.")
_FORBIDDEN: dict[str, str] = {
    "TransactionStmt": "Transaction control ({label}) is refused: pgbot opens and ends the transaction "
                       "around each statement itself.",
    "VariableSetStmt": _SET_REASON,
    "ConstraintsSetStmt": _SET_REASON,
    "DiscardStmt": "DISCARD is refused: it resets session state pgbot relies on.",
    "LockStmt": "LOCK is refused: explicit table locks can block other sessions; each statement takes "
                "the locks it needs.",
    "ListenStmt": "{label} is refused: pgbot does not send or wait for notifications.",
    "UnlistenStmt": "{label} is refused: pgbot does not send or wait for notifications.",
    "NotifyStmt": "{label} is refused: pgbot does not send or wait for notifications.",
    "PrepareStmt": "Prepared statements ({label}) are refused: send the statement itself, so the guard "
                   "sees what runs.",
    "ExecuteStmt": "Prepared statements ({label}) are refused: send the statement itself, so the guard "
                   "sees what runs.",
    "DeallocateStmt": "Prepared statements ({label}) are refused: pgbot keeps no session state.",
    "DeclareCursorStmt": "Cursors ({label}) are refused: they outlive a single statement; send the query.",
    "FetchStmt": "Cursors ({label}) are refused: they outlive a single statement; send the query.",
    "ClosePortalStmt": "Cursors ({label}) are refused: they outlive a single statement; send the query.",
    "AlterSystemStmt": "ALTER SYSTEM is refused: it rewrites the server's configuration.",
    "LoadStmt": "LOAD is refused: it loads a shared library into the server.",
    "CreatedbStmt": "{label} is refused: pgbot works inside the configured databases and does not "
                    "create, drop or reconfigure databases.",
    "DropdbStmt": "{label} is refused: pgbot works inside the configured databases and does not "
                  "create, drop or reconfigure databases.",
    "AlterDatabaseStmt": "{label} is refused: pgbot does not reconfigure databases.",
    "AlterDatabaseSetStmt": "{label} is refused: pgbot does not reconfigure databases.",
    "AlterDatabaseRefreshCollStmt": "{label} is refused: pgbot does not reconfigure databases.",
    "CheckPointStmt": "CHECKPOINT is refused: it forces server-wide I/O.",
    "CreateTableSpaceStmt": "{label} is refused: tablespaces touch the server's file system.",
    "DropTableSpaceStmt": "{label} is refused: tablespaces touch the server's file system.",
    "AlterTableSpaceOptionsStmt": "{label} is refused: tablespaces touch the server's file system.",
    "AlterTableMoveAllStmt": "{label} is refused: moving every table between tablespaces is outside "
                             "what pgbot manages.",
    "PLAssignStmt": "{label} is only valid inside PL/pgSQL.",
    "ReturnStmt": "{label} is only valid inside a function body.",
}
_WRITE = {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}
_ADMIN = {
    "VacuumStmt", "ReindexStmt", "ClusterStmt", "GrantStmt", "GrantRoleStmt", "AlterDefaultPrivilegesStmt",
    "CreateRoleStmt", "AlterRoleStmt", "AlterRoleSetStmt", "DropRoleStmt", "ReassignOwnedStmt",
    "DropOwnedStmt", "RefreshMatViewStmt", "DoStmt", "CallStmt", "CreateSubscriptionStmt",
    "AlterSubscriptionStmt", "DropSubscriptionStmt",
}
_DDL = {
    "CreateStmt", "CreateTableAsStmt", "ViewStmt", "IndexStmt", "CreateSeqStmt", "AlterSeqStmt",
    "CreateSchemaStmt", "CreateFunctionStmt", "AlterFunctionStmt", "DefineStmt", "CompositeTypeStmt",
    "CreateEnumStmt", "AlterEnumStmt", "CreateRangeStmt", "CreateDomainStmt", "AlterDomainStmt",
    "CreateExtensionStmt", "AlterExtensionStmt", "AlterExtensionContentsStmt", "CreateTrigStmt",
    "CreateEventTrigStmt", "AlterEventTrigStmt", "RuleStmt", "CreatePolicyStmt", "AlterPolicyStmt",
    "AlterTableStmt", "DropStmt", "TruncateStmt", "RenameStmt", "CommentStmt", "SecLabelStmt",
    "AlterObjectSchemaStmt", "AlterObjectDependsStmt", "AlterOwnerStmt", "CreateStatsStmt",
    "AlterStatsStmt", "AlterTypeStmt", "AlterOperatorStmt", "AlterCollationStmt", "CreateCastStmt",
    "CreateConversionStmt", "CreateOpClassStmt", "CreateOpFamilyStmt", "AlterOpFamilyStmt",
    "CreateAmStmt", "CreatePLangStmt", "CreateTransformStmt", "AlterTSConfigurationStmt",
    "AlterTSDictionaryStmt", "CreateFdwStmt", "AlterFdwStmt", "CreateForeignServerStmt",
    "AlterForeignServerStmt", "CreateForeignTableStmt", "CreateUserMappingStmt", "AlterUserMappingStmt",
    "DropUserMappingStmt", "ImportForeignSchemaStmt", "CreatePublicationStmt", "AlterPublicationStmt",
}

_LABELS = {
    "SelectStmt": "SELECT", "CreateStmt": "CREATE TABLE", "IndexStmt": "CREATE INDEX",
    "ViewStmt": "CREATE VIEW", "CreateSeqStmt": "CREATE SEQUENCE", "AlterSeqStmt": "ALTER SEQUENCE",
    "CreatedbStmt": "CREATE DATABASE", "DropdbStmt": "DROP DATABASE", "AlterDatabaseSetStmt":
    "ALTER DATABASE", "AlterDatabaseRefreshCollStmt": "ALTER DATABASE", "RuleStmt": "CREATE RULE",
    "CreateTrigStmt": "CREATE TRIGGER", "CreatePLangStmt": "CREATE LANGUAGE", "CommentStmt": "COMMENT ON",
    "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW", "CheckPointStmt": "CHECKPOINT",
    "DeclareCursorStmt": "DECLARE CURSOR", "ClosePortalStmt": "CLOSE",
    "CreateFdwStmt": "CREATE FOREIGN DATA WRAPPER", "CreateStatsStmt": "CREATE STATISTICS",
    "ConstraintsSetStmt": "SET CONSTRAINTS", "ReassignOwnedStmt": "REASSIGN OWNED",
    "AlterRoleSetStmt": "ALTER ROLE", "SecLabelStmt": "SECURITY LABEL", "DoStmt": "DO",
    "AlterDefaultPrivilegesStmt": "ALTER DEFAULT PRIVILEGES", "PLAssignStmt": "assignment",
    "CreateTableSpaceStmt": "CREATE TABLESPACE", "DropTableSpaceStmt": "DROP TABLESPACE",
    "AlterTableSpaceOptionsStmt": "ALTER TABLESPACE", "AlterTableMoveAllStmt": "ALTER ... ALL IN TABLESPACE",
}
_TRANSACTION_LABELS = {
    "BEGIN": "BEGIN", "START": "START TRANSACTION", "ROLLBACK_TO": "ROLLBACK TO SAVEPOINT",
    "PREPARE": "PREPARE TRANSACTION", "COMMIT_PREPARED": "COMMIT PREPARED",
    "ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}
_SET_TARGETS = {"role": "ROLE", "session_authorization": "SESSION AUTHORIZATION",
                "transaction": "TRANSACTION", "session_characteristics": "SESSION CHARACTERISTICS"}
_OBJECT_WORDS = {"MATVIEW": "MATERIALIZED VIEW", "TABCONSTRAINT": "CONSTRAINT", "STATISTIC_EXT": "STATISTICS",
                 "FDW": "FOREIGN DATA WRAPPER", "FOREIGN_SERVER": "SERVER"}
# Object types whose DROP/COMMENT names a relation, and those that name "table.object".
_RELATION_OBJECTS = {"TABLE", "VIEW", "MATVIEW", "INDEX", "SEQUENCE", "FOREIGN_TABLE"}
_ON_TABLE_OBJECTS = {"TRIGGER", "RULE", "POLICY", "COLUMN", "TABCONSTRAINT"}


def _objname(objtype: enums.ObjectType | None) -> str:
    """"TABLE" for ObjectType.OBJECT_TABLE."""
    return objtype.name.removeprefix("OBJECT_") if objtype is not None else "OBJECT"


def _object_word(objtype: enums.ObjectType | None) -> str:
    name = _objname(objtype)
    return _OBJECT_WORDS.get(name, name.replace("_", " "))


def _label(node: ast.Node) -> str:
    """The statement's SQL keywords, for messages: "UPDATE", "DROP TABLE", "SET ROLE"."""
    name = type(node).__name__
    if isinstance(node, ast.SelectStmt) and node.valuesLists:
        return "VALUES"
    if isinstance(node, ast.TransactionStmt):
        kind = node.kind.name.removeprefix("TRANS_STMT_") if node.kind is not None else "transaction"
        return _TRANSACTION_LABELS.get(kind, kind)
    if isinstance(node, ast.VariableSetStmt):
        resets = node.kind in (enums.VariableSetKind.VAR_RESET, enums.VariableSetKind.VAR_RESET_ALL)
        verb = ("RESET" if resets else "SET") + (" LOCAL" if node.is_local else "")
        target = _SET_TARGETS.get(node.name or "", node.name or "ALL")
        return f"{verb} {target}"
    if isinstance(node, ast.DropStmt):
        return f"DROP {_object_word(node.removeType)}"
    if isinstance(node, ast.AlterTableStmt):
        return f"ALTER {_object_word(node.objtype)}"
    if isinstance(node, ast.RenameStmt):
        return f"ALTER {_object_word(node.renameType)} ... RENAME"
    if isinstance(node, ast.CreateTableAsStmt):
        return "CREATE MATERIALIZED VIEW" if node.objtype == enums.ObjectType.OBJECT_MATVIEW \
            else "CREATE TABLE AS"
    if isinstance(node, ast.VacuumStmt):
        return "VACUUM" if node.is_vacuumcmd else "ANALYZE"
    if isinstance(node, ast.GrantStmt | ast.GrantRoleStmt):
        return "GRANT" if node.is_grant else "REVOKE"
    if isinstance(node, ast.FetchStmt):
        return "MOVE" if node.ismove else "FETCH"
    if isinstance(node, ast.DefineStmt):
        return f"CREATE {_object_word(node.kind)}"
    if isinstance(node, ast.CreateFunctionStmt):
        return "CREATE PROCEDURE" if node.is_procedure else "CREATE FUNCTION"
    if name in _LABELS:
        return _LABELS[name]
    words = re.findall(r"[A-Z][a-z]*", name.removesuffix("Stmt"))
    return " ".join(words).upper()


def _walk(root: ast.Node) -> Iterator[ast.Node]:
    """Every node under root, iteratively (deep trees must not hit Python's recursion limit)."""
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            for attr in item:
                # FOR UPDATE OF x names a FROM item (maybe an alias), not a relation.
                if isinstance(item, ast.LockingClause) and attr == "lockedRels":
                    continue
                value = getattr(item, attr)
                if isinstance(value, ast.Node | tuple | list):
                    stack.append(value)
        elif isinstance(item, tuple | list):
            stack.extend(reversed(item))


_PLAIN_IDENT = re.compile(r"[^\W\d][\w$]*")


def _ident(name: str) -> str:
    if _PLAIN_IDENT.fullmatch(name) and name == name.lower() and name not in RESERVED_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _qualified(parts: Iterable[str | None]) -> str:
    return ".".join(_ident(part) for part in parts if part)


def qualified_name(*parts: str | None) -> str:
    """A dotted name spelt exactly as :attr:`Classification.tables` spells it, for comparisons."""
    return _qualified(parts)


def _names(items: Iterable[object]) -> list[str]:
    return [item.sval or "" for item in items if isinstance(item, ast.String)]


def _tables(root: ast.Node, nodes: list[ast.Node]) -> tuple[str, ...]:
    ctes = {node.ctename for node in nodes if isinstance(node, ast.CommonTableExpr)}
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.RangeVar):
            if node.schemaname is None and node.catalogname is None and node.relname in ctes:
                continue
            found.add(_qualified((node.catalogname, node.schemaname, node.relname)))
    objects: list[list[str]] = []
    if isinstance(root, ast.DropStmt):
        objtype = _objname(root.removeType)
        for obj in root.objects or ():
            names = _names(obj) if isinstance(obj, tuple | list) else []
            if objtype in _RELATION_OBJECTS:
                objects.append(names)
            elif objtype in _ON_TABLE_OBJECTS:
                objects.append(names[:-1])
    elif isinstance(root, ast.CommentStmt) and isinstance(root.object, tuple | list):
        objtype = _objname(root.objtype)
        names = _names(root.object)
        if objtype in _RELATION_OBJECTS:
            objects.append(names)
        elif objtype == "COLUMN":
            objects.append(names[:-1])
    found.update(_qualified(names) for names in objects if names)
    return tuple(sorted(found))


def _is_true(option: ast.DefElem) -> bool:
    """A boolean DefElem (EXPLAIN's ANALYZE, VACUUM's FULL): anything but an explicit false counts."""
    arg = option.arg
    if isinstance(arg, ast.String):
        return (arg.sval or "").lower() not in ("false", "off", "no", "0")
    if isinstance(arg, ast.Integer):
        return arg.ival != 0
    if isinstance(arg, ast.Boolean):
        return bool(arg.boolval)
    return True


def _option(options: Iterable[object] | None, name: str) -> bool:
    return any(isinstance(o, ast.DefElem) and o.defname == name and _is_true(o) for o in options or ())


@dataclass(frozen=True, slots=True)
class _Verdict:
    kind: StatementKind
    label: str
    lock: str | None = None
    reason: str | None = None


_AT = enums.AlterTableType
_ALTER_TABLE_SUE = {_AT.AT_SetStatistics, _AT.AT_ClusterOn, _AT.AT_DropCluster, _AT.AT_SetOptions,
                    _AT.AT_ResetOptions, _AT.AT_SetRelOptions, _AT.AT_ResetRelOptions,
                    _AT.AT_ReplaceRelOptions, _AT.AT_ValidateConstraint, _AT.AT_DetachPartitionFinalize}
_ALTER_TABLE_SRE = {_AT.AT_EnableTrig, _AT.AT_EnableAlwaysTrig, _AT.AT_EnableReplicaTrig, _AT.AT_DisableTrig,
                    _AT.AT_EnableTrigAll, _AT.AT_DisableTrigAll, _AT.AT_EnableTrigUser,
                    _AT.AT_DisableTrigUser}


def _alter_table_lock(cmd: object) -> str:
    """Per AlterTableGetLockLevel in Postgres; anything not listed takes ACCESS EXCLUSIVE."""
    if not isinstance(cmd, ast.AlterTableCmd):
        return ACCESS_EXCLUSIVE
    if cmd.subtype in _ALTER_TABLE_SUE:
        return SHARE_UPDATE_EXCLUSIVE
    partition = cmd.def_ if isinstance(cmd.def_, ast.PartitionCmd) else None
    if cmd.subtype == _AT.AT_DetachPartition and partition is not None and partition.concurrent:
        return SHARE_UPDATE_EXCLUSIVE
    if cmd.subtype in _ALTER_TABLE_SRE:
        return SHARE_ROW_EXCLUSIVE
    if (cmd.subtype == _AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint)
            and cmd.def_.contype == enums.ConstrType.CONSTR_FOREIGN):
        return SHARE_ROW_EXCLUSIVE
    return ACCESS_EXCLUSIVE


def _has_foreign_key(nodes: Iterable[ast.Node]) -> bool:
    return any(isinstance(n, ast.Constraint) and n.contype == enums.ConstrType.CONSTR_FOREIGN for n in nodes)


def _reads_relations(node: ast.Node | None) -> str | None:
    reads = node is not None and any(isinstance(n, ast.RangeVar) for n in _walk(node))
    return ACCESS_SHARE if reads else None


def _change_lock(node: ast.Node) -> str | None:
    """Best-effort strongest table lock a DDL or ADMIN statement takes (Postgres docs, per command)."""
    nodes = list(_walk(node))
    match node:
        case ast.AlterTableStmt():
            return _strongest(*(_alter_table_lock(cmd) for cmd in node.cmds or ()))
        case ast.IndexStmt():
            return SHARE_UPDATE_EXCLUSIVE if node.concurrent else SHARE
        case ast.DropStmt():
            concurrent = node.concurrent and node.removeType == enums.ObjectType.OBJECT_INDEX
            return SHARE_UPDATE_EXCLUSIVE if concurrent else ACCESS_EXCLUSIVE
        case ast.CreateStmt():
            return _strongest(
                ACCESS_EXCLUSIVE if node.partbound is not None else None,  # on the partitioned parent
                SHARE_UPDATE_EXCLUSIVE if node.inhRelations and node.partbound is None else None,
                SHARE_ROW_EXCLUSIVE if _has_foreign_key(nodes) else None,  # on the referenced table
                ACCESS_SHARE if any(isinstance(n, ast.TableLikeClause) for n in nodes) else None,
            )
        case ast.ViewStmt():
            return ACCESS_EXCLUSIVE if node.replace else _reads_relations(node.query)
        case ast.CreateTableAsStmt():
            return _reads_relations(node.query)
        case ast.RenameStmt():
            if node.renameType == enums.ObjectType.OBJECT_INDEX:
                return SHARE_UPDATE_EXCLUSIVE
            kind = _objname(node.renameType)
            return ACCESS_EXCLUSIVE if kind in _RELATION_OBJECTS | _ON_TABLE_OBJECTS else None
        case ast.CommentStmt():
            kind = _objname(node.objtype)
            return SHARE_UPDATE_EXCLUSIVE if kind in _RELATION_OBJECTS | _ON_TABLE_OBJECTS else None
        case ast.AlterObjectSchemaStmt():
            return ACCESS_EXCLUSIVE if node.relation is not None else None
        case ast.CreateSchemaStmt():
            return _strongest(*(_change_lock(e) for e in node.schemaElts or () if isinstance(e, ast.Node)))
        case ast.VacuumStmt():
            return ACCESS_EXCLUSIVE if node.is_vacuumcmd and _option(node.options, "full") \
                else SHARE_UPDATE_EXCLUSIVE
        case ast.ReindexStmt():
            return SHARE_UPDATE_EXCLUSIVE if _option(node.params, "concurrently") else ACCESS_EXCLUSIVE
        case ast.RefreshMatViewStmt():
            return EXCLUSIVE if node.concurrent else ACCESS_EXCLUSIVE
        case ast.CreateTrigStmt() | ast.AlterSeqStmt():
            return SHARE_ROW_EXCLUSIVE
        case ast.CreateStatsStmt() | ast.AlterStatsStmt():
            return SHARE_UPDATE_EXCLUSIVE
        case ast.TruncateStmt() | ast.ClusterStmt() | ast.RuleStmt() | ast.CreatePolicyStmt() \
                | ast.AlterPolicyStmt() | ast.DropOwnedStmt():
            return ACCESS_EXCLUSIVE
    return None


def _select_verdict(node: ast.Node, nodes: list[ast.Node]) -> _Verdict:
    """A SELECT reads unless it hides a data-modifying CTE, locks rows or creates a table (INTO)."""
    modifies = any(type(n).__name__ in _WRITE for n in nodes)
    locks_rows = any(isinstance(n, ast.LockingClause) for n in nodes)
    lock = _strongest(ROW_EXCLUSIVE if modifies else None, ROW_SHARE if locks_rows else None)
    if any(isinstance(n, ast.IntoClause) for n in nodes):
        return _Verdict(StatementKind.DDL, "SELECT ... INTO", _strongest(ACCESS_SHARE, lock))
    if modifies:
        return _Verdict(StatementKind.WRITE, "a data-modifying WITH", lock)
    if locks_rows:
        return _Verdict(StatementKind.WRITE, "SELECT ... FOR UPDATE/SHARE, which locks rows", lock)
    return _Verdict(StatementKind.READ, _label(node))


def _verdict(node: ast.Node) -> _Verdict:
    name = type(node).__name__
    label = _label(node)
    nodes = list(_walk(node))
    if isinstance(node, ast.VariableSetStmt) and node.name in ("role", "session_authorization"):
        return _Verdict(StatementKind.FORBIDDEN, label, reason=f"{label} is refused: pgbot runs every "
                        "statement as your mapped database role, and that cannot be switched from chat.")
    if name in _FORBIDDEN:
        return _Verdict(StatementKind.FORBIDDEN, label, reason=_FORBIDDEN[name].format(label=label))
    if isinstance(node, ast.SelectStmt):
        return _select_verdict(node, nodes)
    if isinstance(node, ast.VariableShowStmt):
        return _Verdict(StatementKind.READ, label)
    if name in _WRITE:
        # Row locks from a FOR UPDATE inside are weaker than ROW EXCLUSIVE; ROW EXCLUSIVE stands.
        return _Verdict(StatementKind.WRITE, label, ROW_EXCLUSIVE)
    if isinstance(node, ast.ExplainStmt) and isinstance(node.query, ast.Node):
        inner = _verdict(node.query)
        if inner.kind is StatementKind.FORBIDDEN:
            return inner
        if _option(node.options, "analyze") and inner.kind is not StatementKind.READ:
            return _Verdict(inner.kind, f"EXPLAIN ANALYZE, which runs the {inner.label}", inner.lock)
        return _Verdict(StatementKind.READ, label)
    if isinstance(node, ast.CopyStmt):
        if node.is_program:
            return _Verdict(StatementKind.FORBIDDEN, label, reason="COPY ... PROGRAM is refused: it runs a "
                            "shell command on the database server.")
        if node.filename is not None:
            return _Verdict(StatementKind.FORBIDDEN, label,
                            reason="COPY to or from a server file is refused: it touches the database "
                                   "server's file system; use STDIN/STDOUT.")
        if node.is_from:
            return _Verdict(StatementKind.WRITE, "COPY ... FROM STDIN", ROW_EXCLUSIVE)
        if node.query is not None:
            inner = _verdict(node.query)
            if inner.kind is not StatementKind.READ:
                return inner
        return _Verdict(StatementKind.READ, label)
    if name in _DDL or isinstance(node, ast.CreateTableAsStmt):
        return _Verdict(StatementKind.DDL, label, _change_lock(node))
    if name in _ADMIN:
        return _Verdict(StatementKind.ADMIN, label, _change_lock(node))
    return _Verdict(StatementKind.FORBIDDEN, label,
                    reason=f"{label} is refused: pgbot does not know this kind of statement ({name}).")


def depth_estimate(sql: str) -> int:
    """An upper bound of the parse tree's depth, from the scanner alone (flat, cheap, never recursive):
    the deepest parenthesis nesting plus every token that can stack a tree level (operators, keywords)."""
    depth = deepest = stacking = 0
    for token in scan(sql):
        if token.name == "ASCII_40":
            depth += 1
            deepest = max(deepest, depth)
        elif token.name == "ASCII_41":
            depth = max(depth - 1, 0)
        elif token.name not in _FLAT_TOKENS:
            stacking += 1
    return deepest + stacking


def check_size(sql: str, *, max_chars: int = DEFAULT_MAX_SQL_CHARS) -> None:
    """Refuse, with a GuardError, SQL too long or too deeply nested to parse safely (see the module's note).

    Every pglast call on text pgbot did not write itself (a chat statement, a query text from
    pg_stat_statements) must come after this check.
    """
    if len(sql) > max_chars:
        raise GuardError(f"This SQL is {len(sql):,} characters long; pgbot accepts at most {max_chars:,} "
                         "([limits] max_sql_chars). Send a shorter statement.")
    try:
        depth = depth_estimate(sql)
    except ParseError as exc:  # an unterminated string or comment: the parser would say the same
        message = str(exc.args[0]) if exc.args else str(exc)
        raise GuardError(f"Postgres could not parse this SQL: {message}.") from exc
    if depth > MAX_DEPTH:
        raise GuardError(f"This SQL is nested too deeply to check safely (about {depth:,} levels of operators "
                         f"and parentheses; the limit is {MAX_DEPTH:,}). Simplify it, e.g. use IN (...) or "
                         "a VALUES list instead of long chains.")


def _parse(sql: str, *, max_chars: int = DEFAULT_MAX_SQL_CHARS) -> ast.Node:
    check_size(sql, max_chars=max_chars)
    try:
        statements = parse_sql(sql)
    except ParseError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else len(sql)
        line = sql.count("\n", 0, offset) + 1
        column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
        raise GuardError(f"Postgres could not parse this SQL: {message} "
                         f"(character {offset + 1}, line {line}, column {column}).") from exc
    if not statements:
        raise GuardError("There is no SQL statement to run (the text is empty or only comments).")
    if len(statements) > 1:
        raise GuardError(f"This text holds {len(statements)} statements; several statements in one string "
                         "are refused; send one at a time.")
    stmt = statements[0].stmt
    if not isinstance(stmt, ast.Node):
        raise GuardError("There is no SQL statement to run.")
    return stmt


def _strip(sql: str) -> str:
    text = sql.strip()
    return text[:-1].rstrip() if text.endswith(";") else text


class SqlGuard:
    """Classifies single SQL statements; ``check_read``/``check_change`` gate the two execution paths."""

    def __init__(self, *, allowed_functions: Iterable[str] = (),
                 max_sql_chars: int = DEFAULT_MAX_SQL_CHARS) -> None:
        # Policy: names (qualified or not) taken off the deny list, e.g. {"nextval"} for a sequence-heavy app.
        self._allowed = _bare_names(allowed_functions)
        self.max_sql_chars = max_sql_chars
        # Verdicts are pure functions of the text: the same statement (a scheduled report, a follow-up, Show
        # SQL, Chart, Export) is parsed and walked once. Bounded; refusals by parse error are not kept.
        self._seen: dict[tuple[str, frozenset[str], int], tuple[Classification, str]] = {}

    def classify(self, sql: str) -> Classification:
        """Parse one statement and classify it; raises GuardError on parse errors and multi-statement text."""
        return self._classify(sql)[0]

    def check_read(self, sql: str, *, allowed_functions: Iterable[str] = ()) -> CheckedSql:
        """Return the checked statement if it only reads; else raise GuardError saying why.

        ``allowed_functions`` (a database's ``allowed_functions``) lifts the named refusals too; the
        catalog check of :mod:`core.db.functions` still decides before the statement runs.
        """
        classification, label = self._classify(sql, extra_allowed=_bare_names(allowed_functions))
        if classification.kind is StatementKind.READ:
            return _mint(classification, path="read")
        raise GuardError(self._refusal(classification, label, path="the read-only path refuses it."))

    def check_change(self, sql: str) -> CheckedSql:
        """Return the checked statement for a write, DDL or admin statement (run only after approval)."""
        classification, label = self._classify(sql)
        if classification.kind is StatementKind.READ:
            raise GuardError(f"This statement only reads ({label}); use the query tool for reads.")
        if classification.kind is StatementKind.FORBIDDEN:
            raise GuardError(self._refusal(classification, label, path=""))
        return _mint(classification, path="change")

    def _classify(self, sql: str, *, extra_allowed: frozenset[str] = frozenset()) -> tuple[Classification, str]:
        key = (sql, extra_allowed, self.max_sql_chars)
        seen = self._seen.get(key)
        if seen is None:
            seen = self._classify_new(sql, extra_allowed=extra_allowed)
            if len(sql) <= SEEN_MAX_CHARS:
                if len(self._seen) >= SEEN_MAX:
                    del self._seen[next(iter(self._seen))]  # the oldest
                self._seen[key] = seen
        return seen

    def _classify_new(self, sql: str, *, extra_allowed: frozenset[str]) -> tuple[Classification, str]:
        node = _parse(sql, max_chars=self.max_sql_chars)
        nodes = list(_walk(node))
        calls = _calls(nodes)
        functions = sorted({call.name.lower() for call in calls if call.via == "call"})
        verdict = _verdict(node)
        kind, reason = verdict.kind, verdict.reason
        allowed = self._allowed | extra_allowed
        if kind in (StatementKind.WRITE, StatementKind.DDL, StatementKind.ADMIN):
            allowed = allowed | _CHANGE_PATH_ALLOWED
        # alias.f is far more often a column than a call: only the catalog check (row-typed argument) judges it.
        denied = [(call.name.lower(), why) for call in calls if call.via != "row"
                  and call.name.lower() not in allowed and (why := _deny_reason(call)) is not None]
        denied = list(dict.fromkeys(denied))
        if denied and kind is not StatementKind.FORBIDDEN:
            named = " and ".join(f"{name}()" for name, _ in denied)
            kind, reason = StatementKind.FORBIDDEN, f"It calls {named}, which pgbot refuses: {denied[0][1]}."
        lock = verdict.lock if kind in (StatementKind.WRITE, StatementKind.DDL, StatementKind.ADMIN) else None
        classification = Classification(
            kind=kind, statement_type=type(node).__name__, sql=_strip(sql), reason=reason,
            tables=_tables(node, nodes), lock=lock, functions=tuple(functions), calls=calls,
            operators=_operators(nodes),
        )
        return classification, verdict.label

    @staticmethod
    def _refusal(classification: Classification, label: str, *, path: str) -> str:
        match classification.kind:
            case StatementKind.WRITE:
                return f"This statement changes data ({label}); {path}"
            case StatementKind.DDL:
                return f"This statement changes the schema ({label}); {path}"
            case StatementKind.ADMIN:
                return f"This is an administrative statement ({label}); {path}"
        return classification.reason or f"This statement is refused ({label})."


def must_run_outside_transaction(classification: Classification) -> bool:
    """Whether Postgres refuses to run this statement inside a transaction block (VACUUM, ... CONCURRENTLY).

    The executor of approved changes needs this: such statements must run on their own, in autocommit.
    """
    node = _parse(classification.sql)
    match node:
        case ast.VacuumStmt():
            return bool(node.is_vacuumcmd)
        case ast.IndexStmt() | ast.DropStmt():
            return bool(node.concurrent)
        case ast.ReindexStmt():
            whole = (enums.ReindexObjectType.REINDEX_OBJECT_SYSTEM,
                     enums.ReindexObjectType.REINDEX_OBJECT_DATABASE)
            return _option(node.params, "concurrently") or node.kind in whole
        case ast.ClusterStmt():
            return node.relation is None
        case ast.AlterTableStmt():
            return any(isinstance(c, ast.AlterTableCmd) and isinstance(c.def_, ast.PartitionCmd)
                       and c.def_.concurrent for c in node.cmds or ())
        case ast.CreateSubscriptionStmt() | ast.DropSubscriptionStmt():
            return True
    return False

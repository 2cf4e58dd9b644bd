"""Which columns of which tables a query filters, joins and sorts on: the raw material of index advice.

Parsed with pglast (Postgres's own parser). Only what a b-tree index can serve is collected: ``col = const``,
``col IN (...)`` (equality), ``<, <=, >, >=, BETWEEN`` (range), ``a.x = b.y`` (join) and ``ORDER BY col``.
An OR, a function around the column or a subquery is left alone: guessing there gives bad advice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pglast import ast, enums, parse_sql
from pglast.stream import RawStream

_RANGE_OPS = {"<", "<=", ">", ">="}


@dataclass(slots=True)
class TableUse:
    """One table of the query and how its columns are used (order of first appearance kept)."""

    relation: str  # as written: "orders" or "public.orders"
    alias: str
    eq: list[str] = field(default_factory=list)
    range: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    predicates: dict[str, list[str]] = field(default_factory=dict)  # column → SQL of its constant conditions

    def add(self, kind: str, column: str, predicate: str | None = None) -> None:
        bucket: list[str] = getattr(self, kind)
        if column not in bucket:
            bucket.append(column)
        if predicate is not None:
            self.predicates.setdefault(column, []).append(predicate)


@dataclass(slots=True)
class QueryShape:
    tables: list[TableUse]
    unresolved: list[tuple[str, str, str | None]]  # (kind, column, predicate) with no table qualifier

    def table(self, alias_or_name: str) -> TableUse | None:
        for use in self.tables:
            if alias_or_name in (use.alias, use.relation, use.relation.rsplit(".", 1)[-1]):
                return use
        return None


def query_shape(sql: str) -> QueryShape:
    stmt = parse_sql(sql)[0].stmt
    shape = QueryShape(tables=[], unresolved=[])
    if stmt is None:
        return shape
    for select in _selects(stmt):
        _from(select, shape)
        _conditions(select.whereClause, shape)
        for sort in select.sortClause or ():
            if isinstance(sort, ast.SortBy):
                _column_use(shape, "order", sort.node, None)
    if isinstance(stmt, ast.UpdateStmt | ast.DeleteStmt):
        _range_var(stmt.relation, shape)
        for item in (stmt.fromClause if isinstance(stmt, ast.UpdateStmt) else stmt.usingClause) or ():
            _from_item(item, shape)
        _conditions(stmt.whereClause, shape)
    return shape


def _selects(stmt: ast.Node) -> Iterable[ast.SelectStmt]:
    """Plain SELECT blocks: the statement itself, both sides of UNION/INTERSECT/EXCEPT, CTE bodies."""
    stack: list[object] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.SelectStmt):
            if node.op is not enums.SetOperation.SETOP_NONE:
                stack.extend((node.larg, node.rarg))
            else:
                yield node
            if node.withClause is not None:
                stack.extend(cte.ctequery for cte in node.withClause.ctes or ()
                             if isinstance(cte, ast.CommonTableExpr))
        elif isinstance(node, ast.UpdateStmt | ast.DeleteStmt | ast.InsertStmt) and node.withClause is not None:
            stack.extend(cte.ctequery for cte in node.withClause.ctes or () if isinstance(cte, ast.CommonTableExpr))
        elif isinstance(node, ast.InsertStmt) and node.selectStmt is not None:
            stack.append(node.selectStmt)


def _from(select: ast.SelectStmt, shape: QueryShape) -> None:
    for item in select.fromClause or ():
        _from_item(item, shape)


def _from_item(item: object, shape: QueryShape) -> None:
    if isinstance(item, ast.RangeVar):
        _range_var(item, shape)
    elif isinstance(item, ast.JoinExpr):
        _from_item(item.larg, shape)
        _from_item(item.rarg, shape)
        _conditions(item.quals, shape)
    elif isinstance(item, ast.RangeSubselect) and isinstance(item.subquery, ast.SelectStmt):
        for select in _selects(item.subquery):
            _from(select, shape)
            _conditions(select.whereClause, shape)


def _range_var(node: ast.RangeVar | None, shape: QueryShape) -> None:
    if node is None or not node.relname:
        return
    relation = f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname
    alias = node.alias.aliasname if node.alias is not None and node.alias.aliasname else node.relname
    if shape.table(alias) is None:
        shape.tables.append(TableUse(relation=relation, alias=alias))


def _conditions(node: object, shape: QueryShape) -> None:
    if isinstance(node, ast.BoolExpr):
        if node.boolop is enums.BoolExprType.AND_EXPR:
            for arg in node.args or ():
                _conditions(arg, shape)
        return  # OR / NOT: a single b-tree index rarely serves them as written
    if not isinstance(node, ast.A_Expr):
        return
    name = node.name[-1].sval if node.name and isinstance(node.name[-1], ast.String) else None
    left, right = node.lexpr, node.rexpr
    if node.kind is enums.A_Expr_Kind.AEXPR_OP and name == "=":
        if _column(left) and _column(right):
            _column_use(shape, "join", left, None)
            _column_use(shape, "join", right, None)
        elif _column(left) and _constant(right):
            _column_use(shape, "eq", left, _sql(node))
        elif _column(right) and _constant(left):
            _column_use(shape, "eq", right, _sql(node))
    elif node.kind is enums.A_Expr_Kind.AEXPR_OP and name in _RANGE_OPS:
        if _column(left) and _constant(right):
            _column_use(shape, "range", left, _sql(node))
        elif _column(right) and _constant(left):
            _column_use(shape, "range", right, _sql(node))
    elif node.kind is enums.A_Expr_Kind.AEXPR_IN and name == "=" and _column(left):
        _column_use(shape, "eq", left, _sql(node))
    elif node.kind is enums.A_Expr_Kind.AEXPR_BETWEEN and _column(left):
        _column_use(shape, "range", left, _sql(node))


def _column(node: object) -> bool:
    return isinstance(node, ast.ColumnRef) and all(isinstance(f, ast.String) for f in node.fields or ())


def _constant(node: object) -> bool:
    if isinstance(node, ast.A_Const | ast.ParamRef):
        return True
    if isinstance(node, ast.TypeCast):
        return _constant(node.arg)
    if isinstance(node, ast.FuncCall):  # now(), current_date - 7: no column inside
        return all(_constant(a) for a in node.args or ())
    if isinstance(node, ast.A_Expr):
        return _constant(node.lexpr) and _constant(node.rexpr) if node.lexpr is not None else _constant(node.rexpr)
    if isinstance(node, ast.SQLValueFunction):
        return True
    if isinstance(node, tuple | list):  # IN (...) lists
        return all(_constant(n) for n in node)
    return False


def _sql(node: ast.Node) -> str:
    return str(RawStream()(node))


def _column_use(shape: QueryShape, kind: str, node: object, predicate: str | None) -> None:
    if not isinstance(node, ast.ColumnRef):
        return
    parts = [f.sval or "" for f in node.fields or () if isinstance(f, ast.String)]
    if not parts:
        return
    column = parts[-1]
    if len(parts) == 1:
        if len(shape.tables) == 1:
            shape.tables[0].add(kind, column, predicate)
        else:
            shape.unresolved.append((kind, column, predicate))
        return
    use = shape.table(".".join(parts[:-1])) or shape.table(parts[-2])
    if use is not None:
        use.add(kind, column, predicate)

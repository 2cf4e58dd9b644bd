"""Read an ``EXPLAIN (FORMAT JSON)`` plan and say in plain words where the time goes and what looks wrong.

Pure functions over the JSON Postgres returns, so the rules are tested without a server. Times are
*exclusive* (a node's own time: its total × loops minus its children's), because the root of a plan always
"takes" the whole query and naming it helps nobody.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.diagnostics.findings import Finding, Severity, number, size

LARGE_TABLE_ROWS = 10_000  # a sequential scan below this is usually the right plan
MISESTIMATE_FACTOR = 10
MISESTIMATE_MIN_ROWS = 100  # 3 rows estimated as 1 is noise; 5,000 estimated as 50 is not
MANY_LOOPS = 1_000


@dataclass(slots=True)
class PlanNode:
    node_type: str
    relation: str | None  # schema-qualified when the plan was VERBOSE
    index_name: str | None
    total_cost: float
    plan_rows: float
    actual_total_ms: float | None
    actual_rows: float | None
    loops: float
    raw: Mapping[str, Any]
    children: list[PlanNode] = field(default_factory=list)
    exclusive_ms: float | None = None
    exclusive_cost: float = 0.0

    @property
    def label(self) -> str:
        text = self.node_type
        if self.index_name:
            text += f" using {self.index_name}"
        if self.relation:
            text += f" on {self.relation}"
        return text


@dataclass(slots=True)
class Plan:
    root: PlanNode
    analyzed: bool
    planning_ms: float | None
    execution_ms: float | None

    @property
    def total_cost(self) -> float:
        return self.root.total_cost

    def nodes(self) -> Iterator[PlanNode]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def relations(self) -> set[str]:
        return {n.relation for n in self.nodes() if n.relation}

    def uses_index(self, name_part: str) -> bool:
        return any(n.index_name and name_part in n.index_name for n in self.nodes())


def parse_plan(document: str | list[Any]) -> Plan:
    """The first plan of an EXPLAIN (FORMAT JSON) result (text as asyncpg returns it, or parsed)."""
    data = json.loads(document) if isinstance(document, str) else document
    top = data[0]
    root = _node(top["Plan"])
    analyzed = root.actual_total_ms is not None
    _fill_exclusive(root)
    return Plan(root=root, analyzed=analyzed, planning_ms=top.get("Planning Time"),
                execution_ms=top.get("Execution Time"))


def _node(raw: Mapping[str, Any]) -> PlanNode:
    relation = raw.get("Relation Name")
    if relation and raw.get("Schema"):
        relation = f"{raw['Schema']}.{relation}"
    node = PlanNode(
        node_type=str(raw.get("Node Type", "?")), relation=relation, index_name=raw.get("Index Name"),
        total_cost=float(raw.get("Total Cost", 0.0)), plan_rows=float(raw.get("Plan Rows", 0.0)),
        actual_total_ms=_float(raw.get("Actual Total Time")), actual_rows=_float(raw.get("Actual Rows")),
        loops=float(raw.get("Actual Loops", 1) or 1), raw=raw,
    )
    node.children = [_node(child) for child in raw.get("Plans", ())]
    return node


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _fill_exclusive(node: PlanNode) -> None:
    for child in node.children:
        _fill_exclusive(child)
    node.exclusive_cost = max(0.0, node.total_cost - sum(c.total_cost for c in node.children))
    if node.actual_total_ms is not None:
        own = node.actual_total_ms * node.loops
        spent = sum((c.actual_total_ms or 0.0) * c.loops for c in node.children)
        node.exclusive_ms = max(0.0, own - spent)


def interpret(plan: Plan, *, table_rows: Mapping[str, float]) -> tuple[list[str], list[Finding]]:
    """Summary lines and findings. ``table_rows`` maps relation (as in the plan) → pg_class.reltuples."""
    return _summary(plan), [
        *_slowest(plan), *_seq_scans(plan, table_rows), *_misestimates(plan), *_spills(plan), *_loops(plan),
    ]


def _summary(plan: Plan) -> list[str]:
    lines: list[str] = []
    if plan.analyzed:
        timing = f"ran in {number(plan.execution_ms or 0.0)} ms (planning {number(plan.planning_ms or 0.0)} ms)"
        rows = plan.root.actual_rows or 0.0
        lines.append(f"The query {timing} and returned {number(rows)} row{'s' if rows != 1 else ''}; "
                     f"estimated cost {number(plan.total_cost)}.")
        buffers = _buffers(plan)
        if buffers is not None:
            hit, read = buffers
            lines.append(f"It touched {number(hit + read)} pages of 8 kB: {number(hit)} from memory, "
                         f"{number(read)} read from disk or the OS cache.")
    else:
        lines.append(f"Estimated cost {number(plan.total_cost)} (planner units), about "
                     f"{number(plan.root.plan_rows)} rows. Not executed: the numbers are the planner's guesses.")
    return lines


def _buffers(plan: Plan) -> tuple[float, float] | None:
    raw = plan.root.raw
    if "Shared Hit Blocks" not in raw:
        return None
    hit = float(raw.get("Shared Hit Blocks", 0)) + sum(float(c.raw.get("Shared Hit Blocks", 0)) for c in
                                                       _init_plans(plan.root))
    read = float(raw.get("Shared Read Blocks", 0)) + sum(float(c.raw.get("Shared Read Blocks", 0)) for c in
                                                         _init_plans(plan.root))
    return hit, read


def _init_plans(root: PlanNode) -> list[PlanNode]:
    return [c for c in root.children if c.raw.get("Parent Relationship") == "InitPlan"]


def _slowest(plan: Plan) -> list[Finding]:
    nodes = list(plan.nodes())
    if plan.analyzed:
        total = sum(n.exclusive_ms or 0.0 for n in nodes) or 1.0
        ranked = sorted(nodes, key=lambda n: n.exclusive_ms or 0.0, reverse=True)[:3]
        details = tuple(f"{n.label}: {number(n.exclusive_ms or 0.0)} ms ({(n.exclusive_ms or 0.0) / total:.0%})"
                        + (f" over {number(n.loops)} loops" if n.loops > 1 else "") for n in ranked)
        top = ranked[0]
        parallel = any(n.raw.get("Parallel Aware") for n in nodes)
        what = (f"Most of the time is spent in {top.label}: {number(top.exclusive_ms or 0.0)} ms of "
                f"{number(total)} ms" + (" (parallel workers' times added up)" if parallel else ""))
    else:
        total = sum(n.exclusive_cost for n in nodes) or 1.0
        ranked = sorted(nodes, key=lambda n: n.exclusive_cost, reverse=True)[:3]
        details = tuple(f"{n.label}: cost {number(n.exclusive_cost)} ({n.exclusive_cost / total:.0%})"
                        for n in ranked)
        top = ranked[0]
        what = f"The most expensive step is {top.label} ({top.exclusive_cost / total:.0%} of the estimated cost)"
    return [Finding(Severity.INFO, "slowest_nodes", what, details=details)]


def _seq_scans(plan: Plan, table_rows: Mapping[str, float]) -> list[Finding]:
    found: list[Finding] = []
    for node in plan.nodes():
        if node.node_type != "Seq Scan" or not node.relation:
            continue
        rows = table_rows.get(node.relation, 0.0)
        condition = node.raw.get("Filter")
        if rows < LARGE_TABLE_ROWS or not condition:
            continue
        if plan.analyzed:
            kept = (node.actual_rows or 0.0) * node.loops
            removed = float(node.raw.get("Rows Removed by Filter", 0)) * node.loops
            what = (f"Sequential scan on {node.relation} (~{number(rows)} rows) read every row to keep "
                    f"{number(kept)} and discard {number(removed)} (filter {condition})")
        else:
            what = (f"Sequential scan on {node.relation} (~{number(rows)} rows) to find about "
                    f"{number(node.plan_rows)} rows (filter {condition})")
        selective = (node.actual_rows if plan.analyzed else node.plan_rows) or 0.0
        severity = Severity.WARNING if selective < rows * 0.1 else Severity.INFO
        found.append(Finding(
            severity, "seq_scan_large_table", what,
            why="Reading the whole table costs time and I/O on every run, and grows with the table.",
            action=("An index on the filtered columns would let Postgres read only the matching rows; "
                    "ask for index advice on this query." if severity is Severity.WARNING else
                    "The filter keeps a large share of the rows, so a sequential scan may well be the best plan."),
        ))
    return found


def _misestimates(plan: Plan) -> list[Finding]:
    if not plan.analyzed:
        return []
    found: list[Finding] = []
    for node in plan.nodes():
        actual = node.actual_rows
        if actual is None or node.loops == 0 or node.raw.get("Actual Loops") == 0:
            continue
        estimated = node.plan_rows
        high, low = max(actual, estimated), max(min(actual, estimated), 1.0)
        if high < MISESTIMATE_MIN_ROWS or high / low < MISESTIMATE_FACTOR:
            continue
        direction = "under" if actual > estimated else "over"
        found.append(Finding(
            Severity.WARNING, "misestimate",
            f"{node.label}: the planner expected {number(estimated)} rows, got {number(actual)} "
            f"({high / low:,.0f}× {direction}estimated)",
            why="Plans are chosen from row estimates; a wrong estimate picks the wrong join or scan.",
            action=("Run ANALYZE on the table so its statistics are current; for correlated columns, "
                    "CREATE STATISTICS (dependencies, ndistinct) on them."),
        ))
    return found[:5]


def _spills(plan: Plan) -> list[Finding]:
    found: list[Finding] = []
    for node in plan.nodes():
        if node.raw.get("Sort Space Type") == "Disk":
            used = float(node.raw.get("Sort Space Used", 0)) * 1024
            found.append(Finding(
                Severity.WARNING, "sort_spill",
                f"{node.label} spilled {size(used)} to disk ({node.raw.get('Sort Method', 'external sort')})",
                why="A sort that does not fit in work_mem writes temporary files and is many times slower.",
                action=("Raise work_mem for this query or role (SET work_mem = '64MB'), sort fewer rows, or "
                        "add an index that returns rows already in this order."),
            ))
        batches = node.raw.get("Hash Batches")
        if isinstance(batches, int) and batches > 1:
            found.append(Finding(
                Severity.WARNING, "hash_spill",
                f"{node.label} was split into {batches} batches on disk",
                why="The hash table did not fit in work_mem, so it was written to temporary files.",
                action="Raise work_mem for this query or role, or join fewer rows.",
            ))
    return found


def _loops(plan: Plan) -> list[Finding]:
    if not plan.analyzed:
        return []
    found: list[Finding] = []
    for node in plan.nodes():
        if node.node_type != "Nested Loop" or len(node.children) < 2:
            continue
        inner = node.children[1]
        if inner.loops >= MANY_LOOPS:
            found.append(Finding(
                Severity.WARNING, "nested_loop",
                f"Nested Loop ran its inner side ({inner.label}) {number(inner.loops)} times, "
                f"{number(inner.exclusive_ms or 0.0)} ms in all",
                why="A nested loop is fast for a few outer rows; with thousands, a hash or merge join usually wins.",
                action=("Check the outer side's row estimate (ANALYZE), and index the inner side's join column "
                        "if each loop scans many rows."),
            ))
    return found

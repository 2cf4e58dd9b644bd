"""Plan interpretation rules on hand-written EXPLAIN JSON (the shapes Postgres 15 emits)."""

from __future__ import annotations

from core.diagnostics.findings import Severity, render_findings
from core.diagnostics.plan import interpret, parse_plan


def node(node_type: str, *, total: float, rows: float, plan_rows: float, loops: float = 1, cost: float = 100.0,
         children: tuple[dict[str, object], ...] = (), **extra: object) -> dict[str, object]:
    return {"Node Type": node_type, "Total Cost": cost, "Plan Rows": plan_rows, "Actual Total Time": total,
            "Actual Rows": rows, "Actual Loops": loops, "Plans": list(children), **extra}


def test_exclusive_times_misestimates_spills_and_loops() -> None:
    inner = node("Index Scan", total=0.01, rows=1, plan_rows=1, loops=5000, Schema="public",
                 **{"Relation Name": "items", "Index Name": "items_pkey"})
    outer = node("Seq Scan", total=40.0, rows=5000, plan_rows=20, Schema="public",
                 **{"Relation Name": "orders", "Filter": "(status = 'x')", "Rows Removed by Filter": 95000})
    loop = node("Nested Loop", total=110.0, rows=5000, plan_rows=20, children=(outer, inner))
    sort = node("Sort", total=150.0, rows=5000, plan_rows=20, children=(loop,),
                **{"Sort Method": "external merge", "Sort Space Type": "Disk", "Sort Space Used": 2048})
    plan = parse_plan([{"Plan": sort, "Planning Time": 0.5, "Execution Time": 151.0}])
    assert plan.analyzed and plan.root.exclusive_ms == 40.0
    assert loop.get("Actual Total Time") == 110.0 and plan.root.children[0].exclusive_ms == 20.0  # 110 - 40 - 50
    summary, findings = interpret(plan, table_rows={"public.orders": 100_000})
    checks = [f.check for f in findings]
    assert summary[0].startswith("The query ran in 151 ms") and "5,000 rows" in summary[0]
    assert checks.count("misestimate") == 3  # sort, loop and scan all expected 20 rows and got 5,000
    assert "sort_spill" in checks and "nested_loop" in checks and "seq_scan_large_table" in checks
    scan = next(f for f in findings if f.check == "seq_scan_large_table")
    assert "keep 5,000 and discard 95,000" in scan.what and scan.severity is Severity.WARNING
    slow = next(f for f in findings if f.check == "slowest_nodes")
    assert slow.what.startswith("Most of the time is spent in Index Scan using items_pkey on public.items: 50 ms")
    spill = next(f for f in findings if f.check == "sort_spill")
    assert "2.0 MB to disk" in spill.what and "work_mem" in spill.action
    text = render_findings(findings)
    assert text.index("WARNING") < text.index("INFO")


def test_plain_explain_uses_costs_and_small_tables_are_not_flagged() -> None:
    scan = {"Node Type": "Seq Scan", "Relation Name": "tiny", "Schema": "public", "Total Cost": 10.0,
            "Plan Rows": 3, "Filter": "(a = 1)"}
    plan = parse_plan([{"Plan": scan}])
    assert not plan.analyzed
    summary, findings = interpret(plan, table_rows={"public.tiny": 50})
    assert "Not executed" in summary[0]
    assert [f.check for f in findings] == ["slowest_nodes"]

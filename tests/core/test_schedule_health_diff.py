"""What a health schedule says: only checks new or worse than the stored snapshot, and those that cleared."""

from __future__ import annotations

from core.diagnostics.findings import Finding, Severity
from core.schedules.health_diff import compare, snapshot


def finding(check: str, severity: Severity, what: str = "x") -> Finding:
    return Finding(severity, check, f"{check}: {what}")


def test_first_problems_are_new_and_info_or_ok_never_count() -> None:
    findings = [finding("blocking", Severity.CRITICAL), finding("top_queries", Severity.INFO),
                finding("cache_hit", Severity.OK)]
    change, now = compare({}, findings)
    assert [f.check for f in change.new_or_worse] == ["blocking"] and change.cleared == ()
    assert now == {"blocking": {"severity": "critical", "count": 1}}
    assert "CRITICAL: blocking" in change.render()


def test_the_same_problems_again_are_quiet_and_worse_ones_are_said() -> None:
    before = snapshot([finding("dead_rows", Severity.WARNING), finding("blocking", Severity.CRITICAL)])
    same = [finding("dead_rows", Severity.WARNING, "other numbers"), finding("blocking", Severity.CRITICAL)]
    assert compare(before, same)[0].quiet
    worse = [finding("dead_rows", Severity.CRITICAL), finding("blocking", Severity.CRITICAL),
             finding("blocking", Severity.CRITICAL, "a second blocker")]
    change, now = compare(before, worse)
    assert sorted({f.check for f in change.new_or_worse}) == ["blocking", "dead_rows"]
    assert now["blocking"] == {"severity": "critical", "count": 2}
    better = [finding("dead_rows", Severity.WARNING)]  # blocking cleared, dead rows back to a warning
    change, _ = compare(now, better)
    assert change.new_or_worse == () and change.cleared == ("blocking",)
    assert change.render() == "Cleared since the last check: blocking."


def test_a_stored_snapshot_from_elsewhere_cannot_break_the_comparison() -> None:
    odd = {"blocking": {"severity": "apocalyptic", "count": "many"}, "x": {}}
    change, _ = compare(odd, [finding("blocking", Severity.WARNING)])
    assert [f.check for f in change.new_or_worse] == ["blocking"] and change.cleared == ("x",)

"""What a health schedule posts: only checks that are new or worse since the last run, and those that cleared.

The last run's problems are kept per check name (``Finding.check``, stable across runs) as the worst severity
and the number of findings; INFO and OK findings are not problems. "Worse" is a higher severity, or the same
severity with more findings (two sessions blocking where there was one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.diagnostics.findings import Finding, Severity, render_findings

_RANK = {Severity.WARNING: 1, Severity.CRITICAL: 2}
Snapshot = dict[str, dict[str, object]]


@dataclass(frozen=True, slots=True)
class HealthChange:
    new_or_worse: tuple[Finding, ...]
    cleared: tuple[str, ...]  # check names that were problems last time and are not now

    @property
    def quiet(self) -> bool:
        return not self.new_or_worse and not self.cleared

    def render(self) -> str:
        lines: list[str] = []
        if self.new_or_worse:
            lines.append(render_findings(list(self.new_or_worse)))
        if self.cleared:
            lines.append("Cleared since the last check: " + ", ".join(c.replace("_", " ") for c in self.cleared) + ".")
        return "\n".join(lines)


def snapshot(findings: Iterable[Finding]) -> Snapshot:
    """Problems per check: ``{"blocking": {"severity": "critical", "count": 2}}``."""
    out: Snapshot = {}
    for finding in findings:
        if finding.severity not in _RANK:
            continue
        seen = out.get(finding.check)
        rank = _RANK[finding.severity]
        if seen is None:
            out[finding.check] = {"severity": finding.severity.value, "count": 1}
            continue
        seen["count"] = int(str(seen["count"])) + 1
        if rank > _rank(seen):
            seen["severity"] = finding.severity.value
    return out


def compare(previous: Mapping[str, Mapping[str, object]], findings: list[Finding]) -> tuple[HealthChange, Snapshot]:
    """The change since ``previous`` (a stored snapshot) and the snapshot to store now."""
    now = snapshot(findings)
    changed: set[str] = set()
    for check, state in now.items():
        before = previous.get(check)
        if before is None or _rank(state) > _rank(before) or (
                _rank(state) == _rank(before) and _count(state) > _count(before)):
            changed.add(check)
    new_or_worse = tuple(f for f in findings if f.check in changed and f.severity in _RANK)
    cleared = tuple(sorted(check for check in previous if check not in now))
    return HealthChange(new_or_worse=new_or_worse, cleared=cleared), now


def _rank(state: Mapping[str, object]) -> int:
    try:
        return _RANK.get(Severity(str(state.get("severity"))), 0)
    except ValueError:  # a stored value from another version: treat as no problem, so it shows again
        return 0


def _count(state: Mapping[str, object]) -> int:
    value = state.get("count")
    return value if isinstance(value, int) else 0

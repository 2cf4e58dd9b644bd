"""A finding: what was seen, why it matters, what to do; and the one way findings become text."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class Severity(enum.StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2, Severity.OK: 3}


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation. ``details`` are extra lines (a list of queries, sessions, indexes)."""

    severity: Severity
    check: str  # a short, stable name ("blocking", "unused_index") for tests and JSON
    what: str
    why: str = ""
    action: str = ""
    details: tuple[str, ...] = field(default_factory=tuple)


def by_severity(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first; the order within a severity is kept (checks already sort by size)."""
    return sorted(findings, key=lambda f: _ORDER[f.severity])


def render_findings(findings: Sequence[Finding], *, max_details: int = 10) -> str:
    """Problems worst first with why/what to do; OK checks summed up on one line at the end."""
    lines: list[str] = []
    problems = [f for f in by_severity(findings) if f.severity is not Severity.OK]
    for finding in problems:
        lines.append(f"{finding.severity.value.upper()}: {finding.what}")
        lines.extend(f"  - {d}" for d in finding.details[:max_details])
        if len(finding.details) > max_details:
            lines.append(f"  - …and {len(finding.details) - max_details} more")
        if finding.why:
            lines.append(f"  Why it matters: {finding.why}")
        if finding.action:
            lines.append(f"  What to do: {finding.action}")
    fine = [f.what for f in findings if f.severity is Severity.OK]
    if fine:
        lines.append("OK: " + "; ".join(fine) + ".")
    return "\n".join(lines)


def number(value: float) -> str:
    """1234567 → "1,234,567"; 12.345 → "12.3": figures people read at a glance."""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def size(n_bytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n_bytes) < 1024 or unit == "TB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def duration_s(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"

"""Plain-text report: one line per question with both systems side by side, then a summary and per-tag scores."""

from __future__ import annotations

from collections import defaultdict

from bench.quality.runner import Outcome, Report

MARKS = {"ok": "ok", "wrong": "WRONG", "no-sql": "NO-SQL", "refused": "REFUSED", "sql-error": "SQL-ERR",
         "error": "ERROR"}


def _cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return f"{'-':<8} {'':>6} {'':>7}"
    mark = MARKS.get(outcome.status, outcome.status) + ("?" if outcome.clarified else "")
    return f"{mark:<8} {outcome.seconds:>6.2f} {outcome.tokens:>7}"


def format_report(report: Report) -> str:
    width = max([len(q.id) for q in report.questions] + [8])
    lines = []
    mode = " (smoke: the scripted server answers with the reference SQL)" if report.smoke else ""
    lines.append(f"pgbot quality benchmark: {len(report.questions)} questions, model {report.model!r} "
                 f"at {report.endpoint}{mode}")
    lines.append(f"database {report.database} (demo shop), TimeZone {report.timezone}"
                 + (f"; techniques off: {', '.join(report.disabled)}" if report.disabled else ""))
    lines.append("")
    header = f"{'question':<{width}}  " + "  ".join(f"{s:<8} {'s':>6} {'tokens':>7}" for s in report.systems)
    lines += [header, "-" * len(header)]
    for q in report.questions:
        cells = "  ".join(_cell(report.outcomes.get((s, q.id))) for s in report.systems)
        lines.append(f"{q.id:<{width}}  {cells}")
    lines += ["", summary(report)]
    return "\n".join(lines)


def summary(report: Report) -> str:
    lines = ["summary"]
    label = 24
    lines.append(f"{'':<{label}}" + "".join(f"{s:>18}" for s in report.systems))

    def row(name: str, values: list[str]) -> None:
        lines.append(f"{name:<{label}}" + "".join(f"{v:>18}" for v in values))

    scores = [report.score(s) for s in report.systems]
    row("execution accuracy", [f"{c}/{t} ({100 * c / t:.0f}%)" if t else "-" for c, t in scores])
    per_system = {s: [o for (sys, _), o in report.outcomes.items() if sys == s] for s in report.systems}
    row("errors (no usable SQL)", [str(sum(o.status in ("error", "no-sql", "refused", "sql-error")
                                         for o in per_system[s])) for s in report.systems])
    row("clarifying questions", [str(sum(o.clarified for o in per_system[s])) for s in report.systems])
    row("mean seconds/question", [f"{_mean([o.seconds for o in per_system[s]]):.2f}" for s in report.systems])
    row("model calls", [str(sum(o.calls for o in per_system[s])) for s in report.systems])
    row("prompt tokens", [str(sum(o.prompt_tokens for o in per_system[s])) for s in report.systems])
    row("completion tokens", [str(sum(o.completion_tokens for o in per_system[s])) for s in report.systems])
    tags: dict[str, list[str]] = defaultdict(list)
    for q in report.questions:
        for tag in q.tags:
            tags[tag].append(q.id)
    if tags:
        lines += ["", "by tag"]
        for tag in sorted(tags):
            ids = tags[tag]
            values = []
            for s in report.systems:
                ok = sum(1 for i in ids if (o := report.outcomes.get((s, i))) is not None and o.correct)
                values.append(f"{ok}/{len(ids)}")
            row(f"  {tag}", values)
    return "\n".join(lines)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0

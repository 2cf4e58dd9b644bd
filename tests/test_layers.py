"""The import structure stays as drawn: no import circles, and no import from a lower layer to a higher one.

Every import counts, also those inside functions and under ``if TYPE_CHECKING:``: a circle that only the
type checker sees still ties two modules together. A new module must be given a place in :data:`LAYERS`
(the test says which): its place is a design decision, not something to find out later.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "adapters", "bot")

# Lowest first. A module may import from its own entry and from lower layers; entries that share a layer are
# peers and do not import each other. An entry names a module or package (and everything in it); the longest
# matching entry wins. "core" alone is the public surface, core/__init__.py. docs/SPEC.md §3 draws the same.
LAYERS: list[tuple[str, ...]] = [
    ("core.sql_secrets", "core.column_kinds", "core.card_state"),
    ("core.errors", "core.messages"),
    ("core.config", "core.sqlguard", "core.display", "core.pretty_sql"),
    ("core.permissions", "core.cards"),
    ("core.llm", "core.db", "core.charts"),
    ("core.threads",),
    ("core.ops",),
    ("core.approvals.audit",),
    ("core.approvals.pending",),
    ("core.approvals.executors",),
    ("core.undo",),
    ("core.approvals",),
    ("core.diagnostics",),
    ("core.backups", "core.migrations", "core.schedules"),
    ("core.tools",),
    ("core.prompt", "core.prompt.ranking"),
    ("core.prompt.feedback", "core.prompt.catalog_cache", "core.prompt.value_hints", "core.prompt.relative_dates",
     "core.prompt.system"),
    ("core.prompt.schema_context", "core.prompt.examples"),
    ("core.prompt.accuracy",),
    ("core.agent",),
    ("core",),
    ("adapters.text_table", "adapters.card_sweep", "adapters.live_line"),
    ("adapters.slack.blocks",),
    ("adapters.discord", "adapters.slack", "adapters.terminal"),
    ("adapters",),
    ("bot",),
]
EXACT_ONLY = {"core", "adapters"}  # a package __init__ only, not everything under it

# Imports that break the rules today, each with why and what would end it. Keep this list short: an entry
# whose import is gone fails the test until it is removed, so the list only shrinks. Empty since issue 15.
KNOWN: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """(imported module of ours, line) for every import statement anywhere in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names]  # a submodule, else the module
        else:
            continue
        for target in targets:
            resolved = _resolve(target)
            if resolved is not None:
                yield resolved, node.lineno


FULL_GRAPH: dict[str, dict[str, int]] = {
    module: {target: line for target, line in _imports(path) if target != module} for module, path in MODULES.items()
}
GRAPH = {module: {t: line for t, line in targets.items() if (module, t) not in KNOWN}
         for module, targets in FULL_GRAPH.items()}


def _entry(module: str) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for level, entries in enumerate(LAYERS):
        for entry in entries:
            matches = module == entry or (entry not in EXACT_ONLY and module.startswith(entry + "."))
            if matches and (best is None or len(entry) > len(best[1])):
                best = (level, entry)
    return best


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_real() -> None:
    """The checks below see the imports: a broken walk would pass them vacuously."""
    assert len(MODULES) > 100
    assert "core.approvals.pending" in GRAPH["core.approvals.decisions"]
    assert "core.agent.loop" in GRAPH["core"]
    assert "core.agent.loop" in GRAPH["core.agent"]  # under TYPE_CHECKING: counted too


def test_known_exceptions_still_exist() -> None:
    gone = [edge for edge in KNOWN if edge[1] not in FULL_GRAPH.get(edge[0], {})]
    assert gone == [], f"fixed, so remove from KNOWN: {gone}"


def test_no_import_circles() -> None:
    assert _cycles(GRAPH) == [], (
        "import circles (modules that import each other, directly or not). A module of core/agent/ that imports "
        "the loop for its Agent type: import 'from core.agent.host import CommandHost as Agent' instead.")


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in MODULES if _entry(m) is None)
    assert missing == [], f"give these modules a place in LAYERS in {Path(__file__).name}: {missing}"


def _wrong_way(graph: dict[str, dict[str, int]]) -> list[str]:
    wrong = []
    for module, targets in sorted(graph.items()):
        here = _entry(module)
        for target, line in sorted(targets.items()):
            there = _entry(target)
            if here is None or there is None or here[1] == there[1]:
                continue
            if there[0] > here[0]:
                wrong.append(f"{module}:{line} imports {target} from a higher layer")
            elif there[0] == here[0]:
                wrong.append(f"{module}:{line} imports {target}, a peer in the same layer")
    return wrong


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    assert _wrong_way(GRAPH) == []


@pytest.mark.parametrize("module", [m for m in MODULES if MODULES[m].name == "__init__.py" and m.count(".") == 1
                                    and m.startswith("core.")])
def test_core_packages_say_what_they_hold_and_import_nothing_at_start(module: str) -> None:
    """What lives in the package, then what it may import ("May import …", by the third line). An
    ``__init__`` imports nothing from other packages at start: importing one module of a package must not
    load another package behind it (cold start, and no circles through ``__init__``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    lines = (ast.get_docstring(tree) or "").splitlines()
    assert any(line.startswith("May import") for line in lines[1:3]), f"{module}: docstring is not 'what / May import'"
    foreign = [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module
               and node.module not in {"__future__", "typing"} and not node.module.startswith(module + ".")]
    foreign += [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    assert foreign == [], f"{module}/__init__.py imports {foreign} at start"


def test_the_checks_catch_what_they_are_for() -> None:
    """Today's fixed mistakes, put back in a copy of the graph, fail the checks again."""
    graph = {module: dict(targets) for module, targets in GRAPH.items()}
    graph["core.migrations.analysis"]["core.tools.changes"] = 19  # the lock table, taken from the tool layer
    graph["core.prompt.schema_context"]["core.prompt.examples"] = 21  # readable_names, taken from a peer
    graph["core.approvals.executors"]["core.approvals.decisions"] = 19  # PendingAction, before pending.py
    assert _wrong_way(graph) == [
        "core.approvals.executors:19 imports core.approvals.decisions from a higher layer",
        "core.migrations.analysis:19 imports core.tools.changes from a higher layer",
        "core.prompt.schema_context:21 imports core.prompt.examples, a peer in the same layer",
    ]
    assert ["core.approvals.decisions", "core.approvals.executors"] in _cycles(graph)

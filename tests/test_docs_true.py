"""The docs stay true to the code: the example config names every setting, the README's command table names
only what ``pgbot --help`` has (and every subcommand it has), and docs/SPEC.md's module map names every module.

A new setting, command or module fails one of these until the doc that users read says it exists.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from bot.cli import build_parser
from core.config import DatabaseSettings, Settings

ROOT = Path(__file__).resolve().parents[1]

# Fields whose value is a table of the user's own keys (identity -> role, role -> DSN), not fixed key names.
_OPEN_TABLES = {"roles", "role_dsns"}


def _model_of(annotation: object) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def settings_keys(model: type[BaseModel], section: str) -> Iterator[tuple[str, str]]:
    """(section, key) for every field, recursing into sub-models as ``[section.field]`` tables."""
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if sub is not None:
            yield from settings_keys(sub, f"{section}.{name}" if section else name)
        elif name in _OPEN_TABLES:
            yield section, name  # a [section.roles] table or a roles = {...} inline table
        else:
            yield section, name


def example_keys(text: str) -> set[tuple[str, str]]:
    """(section, key) for each ``key =`` line, commented out or not, under the section above it; a commented
    ``# [section]`` header counts too, and ``[databases.NAME…]`` is read as ``databases.*``."""
    found: set[tuple[str, str]] = set()
    section = ""
    for line in text.splitlines():
        header = re.match(r"^#? ?\[([A-Za-z0-9_.\-]+)\]", line)
        if header:
            section = re.sub(r"^databases\.[^.]+", "databases.*", header.group(1))
            if section.endswith((".roles", ".role_dsns")):  # a table of the user's keys: the field itself
                parent, _, field = section.rpartition(".")
                found.add((parent, field))
            continue
        key = re.match(r"^#? ?([A-Za-z_][A-Za-z0-9_]*) =", line)
        if key:
            found.add((section, key.group(1)))
    return found


def test_every_setting_is_in_the_example_config() -> None:
    example = example_keys((ROOT / "pgbot.example.toml").read_text(encoding="utf-8"))
    expected = {(s, k) for s, k in settings_keys(Settings, "") if s != "databases" or k != "databases"}
    expected |= set(settings_keys(DatabaseSettings, "databases.*"))
    expected.discard(("", "databases"))
    missing = sorted(f"[{s}] {k}" for s, k in expected - example)
    assert not missing, f"pgbot.example.toml lacks (add each with a short comment): {missing}"


def test_the_example_config_names_no_unknown_key() -> None:
    known = set(settings_keys(Settings, "")) | set(settings_keys(DatabaseSettings, "databases.*"))
    unknown = sorted(f"[{s}] {k}" for s, k in example_keys((ROOT / "pgbot.example.toml").read_text("utf-8"))
                     if (s, k) not in known and not s.endswith((".roles", ".role_dsns")))
    assert not unknown, unknown


def test_example_key_parser_reads_sections_and_comments() -> None:
    """The parser above must see what the assertions rely on (a parser that finds nothing proves nothing)."""
    text = "[llm]\nmodel = 1\n# temperature = 0\n#nope\n[databases.shop.approvers]\nroles = []\n# [limits]\n# a = 1\n"
    assert example_keys(text) == {("llm", "model"), ("llm", "temperature"), ("databases.*.approvers", "roles"),
                                  ("limits", "a")}
    keys = set(settings_keys(Settings, ""))
    assert ("llm", "temperature") in keys and ("undo", "valid_for_s") in keys
    assert ("databases.*.approvers", "allow_self_approval") in set(settings_keys(DatabaseSettings, "databases.*"))


# --- README commands table vs the real parser -------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def _actions(parser: argparse.ArgumentParser) -> set[str]:
    """Words a positional with fixed choices takes (``pgbot migrate status|up|down``)."""
    return {str(c) for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
            for c in (a.choices or ())}


def readme_commands() -> list[tuple[list[str], set[str], str]]:
    """(command words, flags, the row) for every ``pgbot …`` command in the README's Commands table; a cell
    with ``a / b`` holds two commands, and ``up|down`` stands for each word."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Commands", 1)[1].split("\n\n", 2)[1]
    rows: list[tuple[list[str], set[str], str]] = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        # Flags in the description count when they stand alone in backticks (`--yes`, not `pg_restore --list`).
        described = set(re.findall(r"`(--[a-z][a-z0-9-]*)`", " ".join(cells[1:])))
        for command in re.findall(r"`(pgbot [^`]*)`", cells[0]):
            flags = described | set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", command))
            words: list[str] = []
            for token in command.replace("\\|", "|").split()[1:]:
                if not re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", token):
                    break
                words.append(token)
            rows.append((words, flags, line))
    return rows


def _expand(words: list[str]) -> Iterator[list[str]]:
    if not words:
        yield []
        return
    for head in words[0].split("|"):
        for rest in _expand(words[1:]):
            yield [head, *rest]


def test_every_readme_command_and_flag_exists() -> None:
    parser = build_parser()
    rows = readme_commands()
    assert len(rows) >= 10, rows  # the table was found and read
    problems = []
    for words, flags, line in rows:
        for path in _expand(words):
            node, known = parser, _flags(parser)
            for word in path:
                children = _subparsers(node)
                if word in _actions(node):
                    continue
                if word not in children:
                    problems.append(f"`pgbot {' '.join(path)}`: no command {word!r} ({line[:60]}…)")
                    break
                node = children[word]
                known |= _flags(node)
            else:
                missing = flags - known
                if missing and not _subparsers(node):
                    problems.append(f"`pgbot {' '.join(path)}`: no flag {sorted(missing)}")
    assert not problems, problems


def test_every_subcommand_is_in_the_readme() -> None:
    documented = {" ".join(p) for words, _, _ in readme_commands() for p in _expand(words)}

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> Iterator[str]:
        for name, child in _subparsers(parser).items():
            path = [*prefix, name]
            if _subparsers(child):
                yield from walk(child, path)
            elif _actions(child):
                yield from (" ".join([*path, action]) for action in sorted(_actions(child)))
            else:
                yield " ".join(path)

    missing = sorted(set(walk(build_parser(), [])) - documented)
    assert not missing, f"README's Commands table lacks: {missing}"


def test_every_flag_of_a_command_is_in_the_readme() -> None:
    """The other direction: a flag ``--help`` shows for a command appears in that command's row(s)."""
    documented: dict[str, set[str]] = {}
    for words, flags, _ in readme_commands():
        for path in _expand(words):
            documented.setdefault(" ".join(path), set()).update(flags)
    parser = build_parser()
    missing = []
    for name, child in _subparsers(parser).items():
        leaves = _subparsers(child) or {"": child}
        for leaf_name, leaf in leaves.items():
            key = f"{name} {leaf_name}".strip()
            seen = documented.get(key, set()) | {f for k, v in documented.items() if k.startswith(f"{key} ") for f in v}
            missing += [f"pgbot {key} {flag}" for flag in sorted(_flags(leaf) - {"-h", "--help", "--config"} - seen)]
    assert not missing, f"README's Commands table lacks: {missing}"


# --- docs/SPEC.md's module map ---------------------------------------------------------------------------


def module_map_entries() -> set[str]:
    """Paths named in the ``| module | responsibility |`` table; bold section rows (no responsibility) do not
    count, ``{a,b}.py`` stands for each."""
    text = (ROOT / "docs" / "SPEC.md").read_text(encoding="utf-8")
    table = text.split("| module | responsibility |", 1)[1].split("\n\n", 1)[0]
    entries: set[str] = set()
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) < 2 or not cells[1]:
            continue
        for path in re.findall(r"`((?:core|adapters|bot)/[^`\s]*)`", cells[0]):
            brace = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", path)
            entries.update(f"{brace[1]}{p}{brace[3]}" for p in brace[2].split(",")) if brace else entries.add(path)
    return entries


def test_every_module_is_in_the_spec_module_map() -> None:
    entries = module_map_entries()
    assert "core/config.py" in entries and "core/charts/" in entries
    missing = []
    for package in ("core", "adapters", "bot"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if path.name == "__init__.py" and rel.count("/") > 1:
                continue  # a subpackage's __init__ is the package itself, named as "pkg/" or by its modules
            parents = [rel.rsplit("/", n)[0] + "/" for n in range(1, rel.count("/") + 1)]
            if rel not in entries and not any(p in entries for p in parents if p.count("/") > 1):
                missing.append(rel)
    assert not missing, f"docs/SPEC.md's module map lacks: {missing}"

"""The docs stay true to the code: the example config names every setting (with its default where it shows a
tunable), the README's command table names only what ``pgbot --help`` has (and every subcommand it has),
docs/SPEC.md's module map names every module, and what the docs quote or name (messages, prompts, settings,
files) exists.

A new setting, command or module fails one of these until the doc that users read says it exists; a reworded
message fails until the doc quoting it is reworded too.
"""

from __future__ import annotations

import argparse
import ast
import re
import tomllib
from collections.abc import Iterator
from enum import Enum
from functools import cache
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bot.cli import build_parser
from bot.migrations_cli import question
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


# --- values in the example config ------------------------------------------------------------------------

# Numbers and switches the examples set on purpose to something other than the default (an example value for
# a setting that is off or derived by default).
_EXAMPLE_VALUES = {("databases.*", "default"), ("databases.*", "migration_timeout_ms"),
                   ("databases.*", "export_timeout_ms"), ("observability", "port")}


def _field(section: str, key: str) -> FieldInfo | None:
    """The settings field ``key`` of ``[section]`` (``databases.*…`` for a database), or None."""
    parts = section.split(".") if section else []
    model: type[BaseModel] = Settings
    if parts[:1] == ["databases"]:
        model, parts = DatabaseSettings, parts[2:]
    for part in parts:
        sub = _model_of(model.model_fields[part].annotation) if part in model.model_fields else None
        if sub is None:
            return None
        model = sub
    return model.model_fields.get(key)


def example_values(text: str) -> Iterator[tuple[str, str, object]]:
    """(section, key, value) for each ``key = value`` line, commented out or not, whose value is TOML."""
    section = ""
    for line in text.splitlines():
        header = re.match(r"^#? ?\[([A-Za-z0-9_.\-]+)\]", line)
        if header:
            section = re.sub(r"^databases\.[^.]+", "databases.*", header.group(1))
            continue
        pair = re.match(r"^#? ?([A-Za-z_][A-Za-z0-9_]*) = (.*)$", line)
        if pair:
            value = re.sub(r"\s+#.*$", "", pair.group(2))  # no '#' in the examples' numbers and switches
            try:
                yield section, pair.group(1), tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                continue  # a string holding '#': not a number or a switch


def _toml_blocks(doc: str) -> str:
    return "\n".join(re.findall(r"```toml\n(.*?)```", (ROOT / doc).read_text(encoding="utf-8"), re.S))


@pytest.mark.parametrize("text", [(ROOT / "pgbot.example.toml").read_text(encoding="utf-8"), _toml_blocks("README.md")],
                         ids=["pgbot.example.toml", "README.md"])
def test_numbers_and_switches_in_examples_are_the_defaults(text: str) -> None:
    """A commented-out ``# max_rows = 500`` reads as "the default is 500": it must be."""
    checked, wrong = 0, []
    for section, key, value in example_values(text):
        field = _field(section, key)
        if field is None:
            if not section.endswith((".roles", ".role_dsns")):
                wrong.append(f"[{section}] {key}: no such setting")
            continue
        if not isinstance(value, int | float | bool) or (section, key) in _EXAMPLE_VALUES:
            continue
        default = field.get_default(call_default_factory=True)
        default = default.value if isinstance(default, Enum) else default
        checked += 1
        if value != default:
            wrong.append(f"[{section}] {key} = {value!r}, but the default is {default!r}")
    assert checked >= 3, checked  # the values were found and read
    assert not wrong, wrong


# --- settings, files and messages the docs name ----------------------------------------------------------

_DOCS = ("README.md", "docs/SPEC.md", "docs/PERFORMANCE.md", "docs/QUALITY.md", "pgbot.example.toml")


def _doc(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


@cache
def _code_text() -> str:
    files = (path for top in ("core", "adapters", "bot") for path in (ROOT / top).rglob("*.py"))
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


def test_settings_named_in_the_docs_exist() -> None:
    """```[limits] shutdown_grace_s``` and ```limits.queue_per_thread``` name settings; a dotted name that is
    no setting must at least be something the code names (a log event, a Slack method: ``chat.update``)."""
    sections = {name for name in Settings.model_fields}
    checked, unknown = 0, []
    for doc in _DOCS:
        text = _doc(doc)
        named = [(m[1], m[2], True) for m in re.finditer(r"`\[([a-z_]+(?:\.[A-Za-z_]+)*)\] ([a-z_][a-z0-9_]*)`", text)]
        named += [(m[1], m[2], False) for m in re.finditer(r"`([a-z_]+)\.([a-z_][a-z0-9_]*)`", text)]
        for section, key, bracketed in named:
            section = re.sub(r"^databases\.[^.]+", "databases.*", section)
            if section.split(".")[0] not in sections or section == "databases":
                continue
            checked += 1
            if _field(section, key) is not None:
                continue
            name = f"{section}.{key}"
            if bracketed or not (name in _code_text() or f"{section}_{key}(" in _code_text()):
                unknown.append(f"{doc}: {name}")
    assert checked > 50, checked
    assert not unknown, f"the docs name settings that do not exist: {unknown}"


def test_files_and_modules_named_in_the_docs_exist() -> None:
    checked, missing = 0, []
    for doc in _DOCS:
        text = _doc(doc)
        for m in re.finditer(r"(?<![\w./-])((?:core|adapters|bot|tests|bench|scripts|deploy|docs)/[\w./-]*)", text):
            path = m.group(1).rstrip(".,:;)")
            checked += 1
            if not (ROOT / path).exists():
                missing.append(f"{doc}: {path}")
        for m in re.finditer(r"`((?:core|adapters|bot|bench)(?:\.\w+)+)`", text):
            checked += 1
            if not _dotted_exists(m.group(1)):
                missing.append(f"{doc}: {m.group(1)}")
    assert checked > 100, checked
    assert not missing, missing


def _dotted_exists(name: str) -> bool:
    """``core.agent.loop`` or ``core.prompt.catalog_cache.estimate_tokens``: a module, then a name in it."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:n])
        module = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if module.exists():
            rest = parts[n:]
            return not rest or re.search(rf"\b{re.escape(rest[0])}\b", module.read_text(encoding="utf-8")) is not None
    return False


# Quoted messages: split at what an example fills in (numbers, 'names', N, …), each remaining piece must be
# text the code writes: one string literal, or several, broken only where the code inserts a value.
_FILLED_IN = re.compile(
    r"(?:\b\d[\d,.:]*|\bN) ?(?:s|ms|MB|KB|GB|%)\b|…|\.\.\.|'[^']*'|\b\d[\d,.:]*\b|\b[A-Z]+\b|<[^>]*>"
    r"|\(Postgres: [^)]*\)|slack:U\w+|@\w+|\b(?:shop|analyst|salaries|analytics|ab12cd34ef56)\b")
_NOT_OURS = ("Input should be a valid integer", "Value error, ")  # pydantic's words in a config error


@cache
def _literals() -> str:
    """Every string constant of core/, adapters/ and bot/ (an f-string's text parts each), between \x01s."""
    parts = [node.value for top in ("core", "adapters", "bot") for path in (ROOT / top).rglob("*.py")
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return "\x01" + "\x01".join(parts) + "\x01"


def _written_by_code(piece: str) -> bool:
    """``piece`` is inside one literal, or is the end of one, whole literals, and the start of another."""
    code = _literals()
    if piece in code:
        return True

    def sized(part: str) -> bool:
        return len(part.strip()) >= 3 or not re.search(r"\w", part)

    @cache
    def rest(i: int) -> bool:
        if sized(piece[i:]) and f"\x01{piece[i:]}" in code:
            return True
        return any(sized(piece[i:j]) and f"\x01{piece[i:j]}\x01" in code and rest(j) for j in range(i + 1, len(piece)))

    return any(sized(piece[:j]) and f"{piece[:j]}\x01" in code and rest(j) for j in range(1, len(piece)))


def unwritten(quote: str) -> list[str]:
    for words in _NOT_OURS:
        quote = quote.replace(words, " … ")
    pieces = (p.strip(" :;,.()") for p in _FILLED_IN.split(quote))
    return [p for p in pieces if len(p) >= 12 and not _written_by_code(p)]


def quoted_messages(doc: str) -> Iterator[str]:
    """Double-quoted sentences ("Working on it…"), and every backticked text of SPEC's error table."""
    text = _doc(doc)
    sentences = re.finditer(r'(?<![\w`])"([A-Z❓⏳✅🚫❌⌛][^"\n→]{15,})"', text)
    yield from (m[1] for m in sentences if len(m[1].split()) >= 4)
    if "| failure | the user sees |" in text:
        table = text.split("| failure | the user sees |", 1)[1].split("\n\n", 1)[0]
        for line in table.splitlines()[2:]:
            yield from (q for q in line.split("|")[2].split("`")[1::2] if len(q.split()) >= 4)


def test_quoted_messages_are_what_the_code_says() -> None:
    quotes = [(doc, q) for doc in ("README.md", "docs/SPEC.md") for q in quoted_messages(doc)]
    assert len(quotes) > 20, quotes
    wrong = [f"{doc}: {quote!r} ({', '.join(map(repr, pieces))} not in the code)"
             for doc, quote in quotes if (pieces := unwritten(quote))]
    assert not wrong, wrong


def test_the_quote_check_tells_a_reworded_message() -> None:
    """Once the SPEC said "I could not finish this within N steps" while the loop said something else."""
    assert unwritten("I could not finish this within N steps. The last problem was: …") == [
        "could not finish this within"]
    assert unwritten("I could not finish this: the same problem came up 3 times in a row, so I stopped.") == []
    assert unwritten("Timed out after 15 s, the read limit on 'shop' (Postgres: canceling …): narrow the dates") == []


def test_the_settings_check_tells_a_key_that_is_not_there() -> None:
    assert _field("llm", "max_retries") is not None and _field("accuracy", "max_repeated_failures") is not None
    assert _field("accuracy", "max_retries") is None  # the SPEC once named it
    assert _field("databases.*.approvers", "roles") is not None


def test_the_readme_quotes_the_migrate_prompts() -> None:
    readme = _doc("README.md")
    for action in ("up", "down"):
        asked = question(action, count=2, database="shop").replace("2", "N")
        assert f"`{asked} [y/N]`" in readme, asked

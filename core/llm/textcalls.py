"""Tool calls that arrive as text.

Small local models (and servers without native tool support) put their tool calls in the message text
instead of ``tool_calls``. These pure functions recover them so the agent loop sees one shape:

* a fenced block: ```json {"name": "run_query", "arguments": {"sql": "..."}} ```, also after prose
  (``arguments`` may be an object or a JSON string; ``parameters``/``args``/``input`` are accepted as
  aliases, ``tool``/``tool_name`` for ``name``, and ``{"function": {...}}`` / ``{"tool_calls": [...]}``
  wrappers are unwrapped; arguments written beside the name, ``{"name": "describe_table", "table": "x"}``,
  are taken when the caller names each tool's parameters and every key is one of them);
* ``<tool_call>{...}</tool_call>`` tags (Qwen / Hermes chat templates), closing tag optional;
* a bare JSON object (or list of them, optionally after Mistral's ``[TOOL_CALLS]`` marker) that is
  exactly such a call;
* SQL written instead of a call: a ```sql block, an unlabelled block holding one statement, or a reply
  that is one bare SELECT/WITH statement (:func:`sql_in_text`).

Near-JSON is repaired before giving up (:func:`load_jsonish`): Python triple-quoted and single-quoted strings,
trailing commas, raw newlines inside strings, ``True``/``None``. Only names in ``known_tools`` count, so an
example JSON object in a prose answer is left alone. Whatever is recovered is a request, not a permission:
the agent validates the arguments and the SQL guard checks every statement as for a native call.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from collections.abc import Collection, Mapping

from pglast.parser import ParseError, parse_sql

from core.errors import GuardError
from core.llm.base import ToolCall
from core.sqlguard import check_size

TEXT_CALL_ID_PREFIX = "call_text_"
# Larger payloads are not repaired, nor tried as SQL outside a ```sql block: repair must stay cheap, and a
# model that writes a megabyte of near-JSON is not making a tool call. (Valid JSON of any size is read.)
MAX_REPAIR_CHARS = 50_000

_TAG_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.S | re.I)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+\-]*)[ \t]*\r?\n?(.*?)```", re.S)
_JSONISH_LANGS = {"", "json", "json5", "tool_call", "tool", "function", "javascript", "python"}
_SQL_LANGS = {"sql", "postgresql", "postgres", "pgsql", "psql", "plpgsql"}
_THINK_RE = re.compile(r"<think>.*?</think>", re.S | re.I)
_MISTRAL_MARKER = "[TOOL_CALLS]"
_BARE_SQL_RE = re.compile(r"(?:SELECT|WITH)\b", re.I)
# Text a model writes as if a tool had answered: chat-template tags, or pgbot's own text-mode result line.
_IMITATION_RE = re.compile(
    r"<\|?(?:tool_response|tool_result|tool_output|function_results?|observation)\|?>"
    r"|<\|im_start\|>\s*(?:tool|user|ipython)\b|^[ \t]*Result of [A-Za-z_][\w.-]*:",
    re.I | re.M,
)
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
_OTHER_KEYS = {"id", "type", "index"}
_PY_NAMES = {"true": "True", "false": "False", "null": "None"}


def strip_reasoning(content: str) -> str:
    """Drop ``<think>…</think>`` blocks that reasoning models leave in ``content``.

    They are not meant for users, and JSON quoted inside them must not be mistaken for a tool call.
    """
    return _THINK_RE.sub("", content).strip()


def imitates_tool_output(content: str) -> bool:
    """Whether ``content`` contains text posing as a tool's answer (``<tool_response>``, "Result of x:").

    A model that writes its own tool output has invented it: such text is never an answer.
    """
    return _IMITATION_RE.search(content) is not None


def looks_like_a_call(content: str, known_tools: set[str]) -> bool:
    """Whether ``content`` still holds something written as a tool call (a ``<tool_call>`` tag, or a fenced
    or bare object naming a known tool) after extraction found none: a call too broken to repair."""
    if _TAG_RE.search(content):
        return True
    names = "|".join(re.escape(name) for name in sorted(known_tools))
    pattern = rf"""["']?(?:name|tool|tool_name|function)["']?\s*[:=]\s*["']({names})["']"""
    return bool(names) and re.search(pattern, content) is not None


def cut_imitation(content: str) -> str:
    """``content`` up to the first imitated tool output: what follows a written call is the model talking
    to itself, not something anyone said."""
    match = _IMITATION_RE.search(content)
    return _tidy(content[: match.start()]) if match else content


def extract_text_tool_calls(
    content: str, known_tools: set[str], *, first_id: int = 1, parameters: Mapping[str, Collection[str]] | None = None
) -> tuple[str, list[ToolCall]]:
    """Split ``content`` into the text that remains and the tool calls written in it.

    Ids are ``call_text_<n>`` counting from ``first_id`` (callers pass a running counter so ids stay
    unique within a conversation). Arguments stay raw JSON text; the agent validates them. ``parameters``:
    each tool's argument names; with them, arguments written beside the name are taken when every one is
    the tool's (``{"name": "describe_table", "table": "x"}``), while an example such as ``{"name":
    "run_query", "note": "…"}`` stays text.
    """
    flat = parameters or {}
    found: list[tuple[str, str]] = []
    text = content

    def take(pattern: re.Pattern[str], text: str, *, group: int, langs: set[str] | None) -> str:
        kept: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            if langs is not None and match.group(1).lower() not in langs:
                continue
            calls = _parse_calls(_unfence(match.group(group)), known_tools, flat)
            if not calls:
                continue
            found.extend(calls)
            kept.append(text[last : match.start()])
            last = match.end()
        kept.append(text[last:])
        return "".join(kept)

    text = take(_TAG_RE, text, group=1, langs=None)
    text = take(_FENCE_RE, text, group=2, langs=_JSONISH_LANGS)
    if not found:
        bare = text.strip()
        if bare.startswith(_MISTRAL_MARKER):
            bare = bare[len(_MISTRAL_MARKER) :].strip()
        calls = _parse_calls(bare, known_tools, flat) if bare[:1] in ("{", "[") else []
        if calls:
            found.extend(calls)
            text = ""
    tool_calls = [
        ToolCall(id=f"{TEXT_CALL_ID_PREFIX}{first_id + i}", name=name, arguments=arguments)
        for i, (name, arguments) in enumerate(found)
    ]
    return _tidy(text), tool_calls


def extract_sql_block(content: str) -> tuple[str, str | None]:
    """Return ``content`` without its first fenced ```sql block, and that block's SQL (or None)."""
    for match in _FENCE_RE.finditer(content):
        if match.group(1).lower() in _SQL_LANGS:
            sql = match.group(2).strip()
            if sql:
                return _tidy(content[: match.start()] + content[match.end() :]), sql
    return content.strip(), None


def sql_in_text(content: str) -> tuple[str, str | None]:
    """SQL a model wrote instead of calling a tool: a ```sql block, else an unlabelled block holding one
    statement, else a whole reply that is one bare SELECT/WITH statement. Returns the remaining text and
    the SQL (or None). Only recognised here; the guard decides what may run.
    """
    rest, sql = extract_sql_block(content)
    if sql is not None:
        return rest, sql
    for match in _FENCE_RE.finditer(content):
        body = match.group(2).strip()
        if match.group(1) == "" and body[:1] not in ("{", "[") and _is_one_statement(body):
            return _tidy(content[: match.start()] + content[match.end() :]), body
    bare = content.strip()
    if _BARE_SQL_RE.match(bare) and _is_one_statement(bare):
        return "", bare
    return content.strip(), None


def load_jsonish(payload: str) -> object | None:
    """JSON, or the near-JSON small models write, as Python data; None when it is neither.

    JSON is tried first (raw newlines inside strings allowed); then the text is read as a Python literal
    with ``true``/``false``/``null`` mapped, which covers triple-quoted and single-quoted strings and trailing
    commas. ``ast.literal_eval`` evaluates literals only, never code.
    """
    try:
        data: object = json.loads(payload, strict=False)
    except RecursionError:  # "[[[[…": deeper than Python can read, and no tool call
        return None
    except ValueError:
        pass
    else:
        return data
    if len(payload) > MAX_REPAIR_CHARS:
        return None
    try:
        tokens = [
            tok._replace(string=_PY_NAMES[tok.string])
            if tok.type == tokenize.NAME and tok.string in _PY_NAMES else tok
            for tok in tokenize.generate_tokens(io.StringIO(payload).readline)
        ]
        literal: object = ast.literal_eval(tokenize.untokenize(tokens))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, tokenize.TokenError):
        return None
    return literal


def _is_one_statement(text: str) -> bool:
    if not text or len(text) > MAX_REPAIR_CHARS:
        return False
    try:
        # libpg_query recurses in C: a deep "1+1+…" from the model would segfault the process (see sqlguard).
        check_size(text, max_chars=MAX_REPAIR_CHARS)
        return len(parse_sql(text)) == 1
    except (ParseError, GuardError):
        return False


def _unfence(payload: str) -> str:
    payload = payload.strip()
    match = _FENCE_RE.fullmatch(payload)
    return match.group(2).strip() if match else payload


def _parse_calls(
    payload: str, known_tools: set[str], flat: Mapping[str, Collection[str]]
) -> list[tuple[str, str]]:
    data = load_jsonish(payload)
    if isinstance(data, dict) and set(data) == {"tool_calls"}:
        data = data["tool_calls"]
    items = data if isinstance(data, list) else [data]
    calls = [_call_from_object(item, known_tools, flat) for item in items]
    if not calls or any(call is None for call in calls):
        return []  # all or nothing: a list with one stray object is not a list of calls
    return [call for call in calls if call is not None]


def _call_from_object(
    obj: object, known_tools: set[str], flat: Mapping[str, Collection[str]]
) -> tuple[str, str] | None:
    if not isinstance(obj, dict):
        return None
    inner = obj.get("function")
    if isinstance(inner, dict):
        obj = inner
    names = [obj[key] for key in _NAME_KEYS if key in obj]
    args = [obj[key] for key in _ARGUMENT_KEYS if key in obj]
    if len(names) != 1 or len(args) > 1 or not isinstance(names[0], str) or names[0] not in known_tools:
        return None
    rest = {key: value for key, value in obj.items() if key not in _NAME_KEYS and key not in _OTHER_KEYS}
    if not args and rest and set(rest) <= set(flat.get(names[0], ())):  # {"name": "describe_table", "table": "x"}
        return names[0], _dump(rest)
    if set(rest) - set(_ARGUMENT_KEYS):
        return None  # not exactly a call: some other JSON that happens to carry a tool's name
    return names[0], repair_arguments(args[0] if args else None)


def repair_arguments(arguments: object) -> str:
    """A call's arguments as JSON text: objects are dumped; text that is near-JSON for an object is
    repaired; anything else passes through raw, so the agent's validation tells the model what is wrong."""
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        try:
            json.loads(arguments)
        except (ValueError, RecursionError):
            data = load_jsonish(arguments.strip())
            return _dump(data) if isinstance(data, dict) else arguments
        return arguments
    return _dump(arguments)


def _dump(data: object) -> str:
    try:
        return json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError):  # a Python literal JSON cannot hold (a set, bytes): let validation say so
        return json.dumps(str(data), ensure_ascii=False)


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()

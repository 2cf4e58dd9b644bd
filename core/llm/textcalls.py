"""Tool calls that arrive as text.

Small local models (and servers without native tool support) put their tool calls in the message text
instead of ``tool_calls``. These pure functions recover them so the agent loop sees one shape:

* a fenced block: ```json {"name": "run_query", "arguments": {"sql": "..."}} ```
  (``arguments`` may be an object or a JSON string; ``parameters`` is accepted as an alias, and an
  OpenAI-style ``{"type": "function", "function": {...}}`` wrapper is unwrapped);
* ``<tool_call>{...}</tool_call>`` tags (Qwen / Hermes chat templates), closing tag optional;
* a bare JSON object (or list of them, optionally after Mistral's ``[TOOL_CALLS]`` marker) that is
  exactly such a call.

Only names in ``known_tools`` count, so an example JSON object in a prose answer is left alone.
"""

from __future__ import annotations

import json
import re

from core.llm.base import ToolCall

TEXT_CALL_ID_PREFIX = "call_text_"

_TAG_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.S | re.I)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+\-]*)[ \t]*\r?\n?(.*?)```", re.S)
_JSONISH_LANGS = {"", "json", "json5", "tool_call", "tool", "function", "javascript"}
_SQL_LANGS = {"sql", "postgresql", "postgres", "pgsql", "psql", "plpgsql"}
_THINK_RE = re.compile(r"<think>.*?</think>", re.S | re.I)
_MISTRAL_MARKER = "[TOOL_CALLS]"


def strip_reasoning(content: str) -> str:
    """Drop ``<think>…</think>`` blocks that reasoning models leave in ``content``.

    They are not meant for users, and JSON quoted inside them must not be mistaken for a tool call.
    """
    return _THINK_RE.sub("", content).strip()


def extract_text_tool_calls(content: str, known_tools: set[str], *, first_id: int = 1) -> tuple[str, list[ToolCall]]:
    """Split ``content`` into the text that remains and the tool calls written in it.

    Ids are ``call_text_<n>`` counting from ``first_id`` (callers pass a running counter so ids stay
    unique within a conversation). Arguments stay raw JSON text; the agent validates them.
    """
    found: list[tuple[str, str]] = []
    text = content

    def take(pattern: re.Pattern[str], text: str, *, group: int, langs: set[str] | None) -> str:
        kept: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            if langs is not None and match.group(1).lower() not in langs:
                continue
            calls = _parse_calls(_unfence(match.group(group)), known_tools)
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
        calls = _parse_calls(bare, known_tools) if bare[:1] in ("{", "[") else []
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


def _unfence(payload: str) -> str:
    payload = payload.strip()
    match = _FENCE_RE.fullmatch(payload)
    return match.group(2).strip() if match else payload


def _parse_calls(payload: str, known_tools: set[str]) -> list[tuple[str, str]]:
    try:
        data = json.loads(payload)
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    calls = [_call_from_object(item, known_tools) for item in items]
    if not calls or any(call is None for call in calls):
        return []  # all or nothing: a list with one stray object is not a list of calls
    return [call for call in calls if call is not None]


def _call_from_object(obj: object, known_tools: set[str]) -> tuple[str, str] | None:
    if not isinstance(obj, dict):
        return None
    inner = obj.get("function")
    if isinstance(inner, dict):
        obj = inner
    name = obj.get("name")
    if not isinstance(name, str) or name not in known_tools:
        return None
    extra = set(obj) - {"name", "arguments", "parameters", "id", "type"}
    if extra:
        return None  # not exactly a call: some other JSON that happens to carry a tool's name
    arguments = obj.get("arguments", obj.get("parameters"))
    if arguments is None:
        return name, "{}"
    if isinstance(arguments, str):
        return name, arguments
    return name, json.dumps(arguments, ensure_ascii=False)


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()

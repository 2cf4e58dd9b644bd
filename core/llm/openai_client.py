"""``LlmClient`` for any OpenAI-compatible chat completions endpoint (OpenAI, Azure-style gateways,
vLLM, llama.cpp, Ollama, LM Studio).

Requests go through ``AsyncOpenAI`` (its timeout and retries, which honour ``Retry-After``), but bodies
are built and replies parsed here as plain JSON: compatible servers break the official shapes in small
ways (``content: null`` refused, no ``tools`` support, tool calls written as text, arguments sent as an
object, calls without ids), and a typed SDK parse would hide or reject exactly those. Tool calls written
as text and SQL written instead of a call are recovered in every tool mode (``core.llm.textcalls``).

``tool_mode = "auto"`` tries native tools and falls back to text mode, for the rest of the process and
that endpoint and model, when the server refuses ``tools`` or the model answers a request with tools by
writing its call as text (it does not use native tools); the switch is logged once. SDK errors are translated into the
``LlmError`` tree at this boundary; messages name the endpoint's host, never the key or URL credentials.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import openai
import structlog

from core.config import LlmSettings
from core.errors import LlmAuthError, LlmError, LlmRateLimitError, LlmResponseError, LlmUnavailableError
from core.llm.base import ChatTurn, Completion, ToolCall, ToolSpec, Usage
from core.llm.textcalls import (
    cut_imitation,
    extract_text_tool_calls,
    repair_arguments,
    sql_in_text,
    strip_reasoning,
)

log = structlog.get_logger(__name__)

# The SDK refuses to start without a key, but local servers (llama.cpp, Ollama, vLLM) ignore it.
NO_API_KEY = "not-needed"
# In text mode a fenced ```sql block is a call to this tool with {"sql": ...}.
TEXT_SQL_TOOL = "run_query"
# Text mode asks for one fenced block per reply; small models go on explaining it and imitate its result
# ("Result of run_query: …"), often hundreds of tokens at a few a second. Generation stops at a closed fence
# followed by a blank line, or an imitated result; the fence cut off is closed again when parsing.
TEXT_MODE_STOPS = ("```\n\n", "\nResult of ")
# Small models read the end of the prompt most: said there, the reply is the block alone, not a paragraph
# of explanation first (about 50 tokens, several seconds on a small CPU, per call).
TEXT_MODE_REMINDER = "(Reply with only one ```sql block to query, or answer in a sentence.)"

ToolMode = Literal["native", "text"]
JsonDict = dict[str, object]

_MENTIONS_TOOLS = re.compile(r"\b(tools?|tool_choice|tool_calls?|functions?|function_call(ing)?)\b", re.I)
_MAX_COMPLETION_TOKENS = re.compile(r"\bmax_completion_tokens\b")
_SECRETISH = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+)")
_MAX_DETAIL = 200
# auto mode's decision per (endpoint URL, model), for the life of the process: every client (and agent)
# talking to the same model gets it without probing again.
_DECIDED: dict[tuple[str, str], ToolMode] = {}


def forget_tool_modes() -> None:
    """Forget auto mode's decisions (tests: a new scripted server may reuse an earlier one's port)."""
    _DECIDED.clear()


def normalize_base_url(url: str | None) -> str | None:
    """Make the configured base URL what the SDK expects.

    Trailing slashes go; a bare host (``http://localhost:8080``) gets ``/v1``, which every local
    server uses; a pasted ``…/chat/completions`` is cut back; any other path is kept (gateways).
    """
    if url is None or not url.strip():
        return None
    url = url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        url = url.removesuffix("/chat/completions").rstrip("/")
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        parts = parts._replace(path="/v1")
    return urlunsplit(parts)


class OpenAIClient:
    """Chat completions with tools over HTTP; see the module docstring for the quirks it absorbs."""

    def __init__(self, settings: LlmSettings) -> None:
        self._settings = settings
        key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
        self._secret = key
        self._client = openai.AsyncOpenAI(
            base_url=normalize_base_url(settings.base_url),
            api_key=key or NO_API_KEY,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
            # aiohttp's connection pool: httpx's scans every pooled connection per request, which costs
            # hundreds of ms per turn at a few hundred concurrent conversations (bench/overhead.py).
            http_client=openai.DefaultAioHttpClient(),
        )
        self._fixed: ToolMode | None = None if settings.tool_mode == "auto" else settings.tool_mode
        self._ids = 0
        self._model_key = (str(self._client.base_url), settings.model)
        # OpenAI's reasoning models refuse max_tokens and want max_completion_tokens; switched on their 400.
        self._budget_key = "max_tokens"
        parts = urlsplit(str(self._client.base_url))
        host = parts.hostname or "?"
        self._endpoint = f"{host}:{parts.port}" if parts.port else host
        self._path = parts.path.rstrip("/")

    @property
    def tool_mode(self) -> ToolMode | None:
        """The mode in use; None while "auto" has not yet seen this model make a tool call either way."""
        return self._fixed or _DECIDED.get(self._model_key)

    async def complete(self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> Completion:
        mode = self.tool_mode
        if not tools or mode is not None:
            completion, _ = await self._complete(messages, tools, mode=mode or "native")
            return completion
        try:  # auto, not decided yet: try native
            completion, from_text = await self._complete(messages, tools, mode="native")
        except LlmError as exc:
            cause = exc.__cause__
            if not isinstance(cause, openai.APIStatusError) or not _rejects_tools(cause):
                raise
            detail = {"status": cause.status_code, "detail": self._detail(cause)}
            if _mentions_tools(cause):
                self._use_text_mode("the server refused tools", **detail)
            completion, _ = await self._complete(messages, tools, mode="text")
            self._use_text_mode("the server refused tools", **detail)
            return completion
        if from_text:
            self._use_text_mode("the model wrote its tool call as text instead of using the tools it was sent")
        elif completion.tool_calls:
            _DECIDED[self._model_key] = "native"
        return completion

    async def ping(self) -> None:
        """Cheap reachability and key check for ``pgbot check-config``: list models, else 1 token."""
        try:
            data = await self._client.get("/models", cast_to=object)
        except openai.APIStatusError as exc:
            if exc.status_code not in (404, 405):
                raise self._map_error(exc) from exc
        except (openai.OpenAIError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self._map_error(exc) from exc
        else:
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                raise self._response_error("GET /models did not return a model list")
            return
        body: JsonDict = {
            "model": self._settings.model,
            "messages": [{"role": "user", "content": "ping"}],
            "max_tokens": 1,
        }
        self._parse(await self._post(body), tools=())  # raises if it is not a completion

    async def aclose(self) -> None:
        await self._client.close()

    # -- request building -------------------------------------------------------------------------

    async def _complete(
        self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, mode: ToolMode
    ) -> tuple[Completion, bool]:
        body: JsonDict = {"model": self._settings.model}
        if mode == "text":
            body["messages"] = _text_messages(messages, tools)
            if tools:
                body["stop"] = list(TEXT_MODE_STOPS)
        else:
            body["messages"] = [_native_message(turn) for turn in messages]
            if tools:
                body["tools"] = [_native_tool(t) for t in tools]
                # "required" only on a turn's first step: later steps must be free to answer in prose.
                first_step = bool(messages) and messages[-1].role == "user"
                required = self._settings.tool_choice == "required" and first_step
                body["tool_choice"] = "required" if required else "auto"
        if self._settings.temperature is not None:
            body["temperature"] = self._settings.temperature
        body[self._budget_key] = self._settings.max_tokens
        return self._parse(await self._post(body), tools=tools, stopped_early="stop" in body)

    async def _post(self, body: JsonDict) -> object:
        try:
            return await self._client.post("/chat/completions", body=body, cast_to=object)
        except openai.BadRequestError as exc:
            if "max_tokens" not in body or not _MAX_COMPLETION_TOKENS.search(f"{exc.message} {self._detail(exc)}"):
                raise self._map_error(exc) from exc
            self._budget_key = "max_completion_tokens"
            log.info("llm.max_completion_tokens", endpoint=self._endpoint, action="sending max_completion_tokens")
            retry = {k: v for k, v in body.items() if k != "max_tokens"}
            retry["max_completion_tokens"] = body["max_tokens"]
            return await self._post(retry)
        except (openai.OpenAIError, json.JSONDecodeError, UnicodeDecodeError) as exc:  # bad JSON body
            raise self._map_error(exc) from exc

    def _use_text_mode(self, why: str, **detail: object) -> None:
        if _DECIDED.get(self._model_key) != "text":
            _DECIDED[self._model_key] = "text"
            log.warning(
                "llm.tools_unsupported", endpoint=self._endpoint, model=self._settings.model, why=why, **detail,
                action="using text tool mode for this model from now on (set llm.tool_mode to skip detection)",
            )

    # -- reply parsing ----------------------------------------------------------------------------

    def _parse(
        self, data: object, *, tools: Sequence[ToolSpec], stopped_early: bool = False
    ) -> tuple[Completion, bool]:
        """The completion, and whether its tool calls were recovered from text (the model wrote them).

        ``stopped_early``: the request sent :data:`TEXT_MODE_STOPS`, so a block may have lost its closing fence."""
        if isinstance(data, str):
            raise self._response_error("not JSON")
        if not isinstance(data, dict):
            raise self._response_error("not a JSON object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            error = data.get("error")
            if error is not None:
                raise self._response_error(f"an error object: {self._scrub(_error_text(error))}")
            raise self._response_error("no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise self._response_error("no message in the first choice")
        content = strip_reasoning(_content_text(message.get("content")))
        if stopped_early and content and content.count("```") % 2:
            content = f"{content.rstrip()}\n```"  # cut at the stop right after its block: close it again
        calls = self._native_calls(message)
        known = {t.name for t in tools}
        from_text = False
        if not calls and known and content:
            content, calls = extract_text_tool_calls(content, known, first_id=self._ids + 1,
                                                     parameters={t.name: t.parameter_names() for t in tools})
            self._ids += len(calls)
            if not calls and TEXT_SQL_TOOL in known:  # SQL written instead of a call, in any mode
                content, sql = sql_in_text(content)
                if sql is not None:
                    calls = [self._call(TEXT_SQL_TOOL, json.dumps({"sql": sql}, ensure_ascii=False))]
            from_text = bool(calls)
            if from_text:  # what follows a written call (an invented "result") is not an answer
                content = cut_imitation(content)
        finish = choices[0].get("finish_reason")
        return Completion(content=content or None, tool_calls=tuple(calls), usage=_usage(data),
                          finish_reason=finish if isinstance(finish, str) else None,
                          calls_from_text=from_text), from_text

    def _native_calls(self, message: JsonDict) -> list[ToolCall]:
        raw = message.get("tool_calls")
        legacy = message.get("function_call")
        items = raw if isinstance(raw, list) else [{"function": legacy}] if isinstance(legacy, dict) else []
        calls = []
        for item in items:
            function = item.get("function") if isinstance(item, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise self._response_error("a tool call without a function name")
            # Some servers send an object, not JSON text; small models write near-JSON (repaired).
            arguments = repair_arguments(function.get("arguments"))
            call_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(call_id, str) and call_id:
                calls.append(ToolCall(id=call_id, name=str(function["name"]), arguments=arguments))
            else:
                calls.append(self._call(str(function["name"]), arguments))
        return calls

    def _call(self, name: str, arguments: str) -> ToolCall:
        self._ids += 1
        return ToolCall(id=f"call_text_{self._ids}", name=name, arguments=arguments)

    # -- errors -----------------------------------------------------------------------------------

    def _map_error(self, exc: Exception) -> LlmError:
        ep = self._endpoint
        if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
            return LlmUnavailableError(
                f"The language model endpoint at {ep} timed out after {self._settings.timeout_s:g} s."
            )
        if isinstance(exc, openai.APIConnectionError):
            return LlmUnavailableError(f"Cannot connect to the language model endpoint at {ep}.")
        if isinstance(exc, openai.AuthenticationError):
            return LlmAuthError(
                f"The language model endpoint at {ep} rejected the API key (HTTP 401); check llm.api_key."
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return LlmAuthError(
                f"The language model endpoint at {ep} refused access (HTTP 403); check llm.api_key and "
                f"whether the key may use model {self._settings.model!r}."
            )
        if isinstance(exc, openai.RateLimitError):
            if exc.code == "insufficient_quota":  # OpenAI sends billing problems as 429 too
                return LlmRateLimitError(
                    f"The language model endpoint at {ep} says the account is out of quota (HTTP 429)."
                )
            retries = self._settings.max_retries
            after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
            return LlmRateLimitError(
                f"The language model endpoint at {ep} is rate limiting pgbot (HTTP 429{after}); try again shortly."
            )
        if isinstance(exc, openai.NotFoundError):
            return LlmError(
                f"Model {self._settings.model!r} not found at the endpoint {ep}{self._path} (HTTP 404); "
                "check llm.model and llm.base_url."
            )
        if isinstance(exc, openai.APIStatusError):
            detail = self._detail(exc)
            suffix = f": {detail}" if detail else "."
            if exc.status_code >= 500:
                return LlmUnavailableError(
                    f"The language model endpoint at {ep} answered HTTP {exc.status_code}{suffix}"
                )
            return LlmError(f"The language model endpoint at {ep} refused the request (HTTP {exc.status_code}){suffix}")
        if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | UnicodeDecodeError):
            return self._response_error("not JSON")
        return LlmError(f"The language model call failed ({type(exc).__name__}).")

    def _response_error(self, why: str) -> LlmResponseError:
        return LlmResponseError(
            f"The language model endpoint at {self._endpoint} sent a reply that is not a chat completion ({why})."
        )

    def _detail(self, exc: openai.APIStatusError) -> str:
        """The server's own error message, if it sent a JSON one: scrubbed, one line, short."""
        body = exc.body
        if isinstance(body, dict):
            return self._scrub(_error_text(body))
        return ""

    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        text = _SECRETISH.sub("***", " ".join(text.split()))
        return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


# -- message conversion ---------------------------------------------------------------------------


def _native_tool(tool: ToolSpec) -> JsonDict:
    function = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
    return {"type": "function", "function": function}


def _native_message(turn: ChatTurn) -> JsonDict:
    # content is never null: llama.cpp's server answers 500 to an assistant turn with content null.
    message: JsonDict = {"role": turn.role, "content": turn.content or ""}
    if turn.role == "assistant" and turn.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in turn.tool_calls
        ]
    if turn.role == "tool":
        message["tool_call_id"] = turn.tool_call_id or ""
    elif turn.name:
        message["name"] = turn.name
    return message


def _text_messages(turns: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> list[JsonDict]:
    """The conversation without native tool fields: calls as assistant text, results as user turns.

    The tool guide is appended to the first system message rather than sent as a second one: several
    chat templates (Gemma, some Mistral builds) refuse a system message anywhere but first. Each message of
    the user's ends with :data:`TEXT_MODE_REMINDER` (every one, not only the last, so a request still
    starts with the previous one and the server can reuse it).
    """
    guide = _text_mode_guide(tools)
    reminder = TEXT_MODE_REMINDER if any(t.name == TEXT_SQL_TOOL for t in tools) else ""
    names: dict[str, str] = {}
    out: list[JsonDict] = []
    previous_was_result = False
    for turn in turns:
        if turn.role == "tool":
            name = names.get(turn.tool_call_id or "") or turn.name or "tool"
            text = f"Result of {name}: {turn.content or ''}"
            if previous_was_result:  # one user turn per batch: strict templates want roles to alternate
                out[-1]["content"] = f"{out[-1]['content']}\n\n{text}"
            else:
                out.append({"role": "user", "content": text})
            previous_was_result = True
            continue
        previous_was_result = False
        if turn.role == "assistant":
            names.update({c.id: c.name for c in turn.tool_calls})
            out.append({"role": "assistant", "content": _assistant_text(turn)})
        elif turn.role == "user" and reminder:
            out.append({"role": "user", "content": f"{turn.content or ''}\n\n{reminder}"})
        else:
            out.append({"role": turn.role, "content": turn.content or ""})
    if out and out[0]["role"] == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{guide}".strip()
    else:
        out.insert(0, {"role": "system", "content": guide})
    return out


def _text_mode_guide(tools: Sequence[ToolSpec]) -> str:
    lines = ["You can use these tools:"]
    for tool in tools:
        schema = json.dumps(tool.parameters, separators=(",", ":"), ensure_ascii=False)
        lines.append(f"- {tool.name}: {tool.description.strip()} Arguments (JSON schema): {schema}")
    lines.append("")
    lines.append("Answer in one of two ways, never both in one reply:")
    lines.append("1. In plain prose, when you can answer the question.")
    if any(t.name == TEXT_SQL_TOOL for t in tools):
        lines.append(
            f"2. To run SQL ({TEXT_SQL_TOOL}), reply with exactly one fenced ```sql block holding one "
            "statement and nothing else. To call another tool, reply with exactly one fenced ```json block: "
            '{"name": "<tool>", "arguments": {...}}.'
        )
    else:
        lines.append(
            '2. To call a tool, reply with exactly one fenced ```json block: {"name": "<tool>", '
            '"arguments": {...}} and nothing else.'
        )
    lines.append('Tool results come back as a user message starting "Result of <tool>:".')
    return "\n".join(lines)


def _assistant_text(turn: ChatTurn) -> str:
    parts = [turn.content.strip()] if turn.content and turn.content.strip() else []
    for call in turn.tool_calls:
        sql = _sql_argument(call) if call.name == TEXT_SQL_TOOL else None
        if sql is not None:
            parts.append(f"```sql\n{sql}\n```")
        else:
            parts.append(f'```json\n{{"name": {json.dumps(call.name)}, "arguments": {call.arguments}}}\n```')
    return "\n\n".join(parts)


def _sql_argument(call: ToolCall) -> str | None:
    try:
        args = json.loads(call.arguments)
    except (ValueError, RecursionError):
        return None
    sql = args.get("sql") if isinstance(args, dict) else None
    return sql if isinstance(sql, str) and len(args) == 1 else None


# -- small helpers --------------------------------------------------------------------------------


def _rejects_tools(exc: openai.APIStatusError) -> bool:
    """Whether an error on the first request with tools means "this server does not do tools"."""
    if exc.status_code in (401, 403, 404, 429) or exc.status_code < 400:
        return False
    return exc.status_code == 400 or _mentions_tools(exc)


def _mentions_tools(exc: openai.APIStatusError) -> bool:
    body = exc.body if isinstance(exc.body, dict | str) else ""
    text = _error_text(body) if isinstance(body, dict) else body
    return bool(_MENTIONS_TOOLS.search(f"{exc.message} {text}"))


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict):
            message = inner.get("message")
            return str(message) if message is not None else ""
        return str(inner)
    return str(error)


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "".join(t for t in texts if isinstance(t, str))
    return ""


def _usage(data: JsonDict) -> Usage:
    """Token counts; cached prompt tokens from OpenAI's and vLLM's ``prompt_tokens_details`` or llama.cpp's
    ``timings.cache_n``."""
    raw, timings = data.get("usage"), data.get("timings")
    if not isinstance(raw, dict):
        return Usage()
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if cached is None and isinstance(timings, dict):
        cached = timings.get("cache_n")
    return Usage(
        prompt_tokens=_count(prompt),
        completion_tokens=_count(completion),
        cached_tokens=_count(cached),
    )


def _count(value: object) -> int:
    """A token count from the server: a non-negative int, else 0 (bools and junk are not counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _refused(exc: BaseException) -> bool:
    """Whether a "timeout" was really a refused connection: the aiohttp transport reports both as timeouts."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or type(seen).__name__ == "ClientConnectorError":
            return True
        seen = seen.__cause__ or seen.__context__
    return False

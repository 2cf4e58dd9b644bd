"""A scripted OpenAI-compatible HTTP server for tests and benchmarks.

Tests queue replies with :meth:`ScriptedLlmServer.script` and read what pgbot sent from
:attr:`ScriptedLlmServer.requests`. Replies are real ``chat.completion`` JSON, so the production client
(``OpenAIClient`` over ``AsyncOpenAI``) is exercised end to end; nothing is patched.

    server = ScriptedLlmServer()
    base_url = await server.start()          # http://127.0.0.1:<port>/v1
    server.script(tool_call("run_query", {"sql": "SELECT 1"}), text("One row."))
    ...
    assert server.requests[0]["messages"][-1]["content"] == "how many?"
    await server.stop()

An empty queue answers HTTP 500 "no scripted response" so a test that asks more than it scripted fails
loudly, unless a ``responder`` (a callable ``request_json -> reply``) is set for dynamic scripts.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

from aiohttp import web

from core.prompt.system import QUESTION_LABEL
from tests.services import serve_locally

JsonObject = dict[str, object]
TextCallStyle = Literal["json_fence", "tool_call_tag", "bare_json", "mistral"]


@dataclass(frozen=True)
class ToolCallSpec:
    name: str
    arguments: Mapping[str, object] | str  # a str is sent as is: script malformed JSON with it
    id: str | None = None


@dataclass(frozen=True)
class ToolCallReply:
    """An assistant message with native ``tool_calls`` (and optional text beside them)."""

    calls: tuple[ToolCallSpec, ...]
    content: str | None = None


@dataclass(frozen=True)
class TextReply:
    """An assistant message with text only (a final answer, or a tool call written as text)."""

    content: str | None
    finish_reason: str = "stop"


@dataclass(frozen=True)
class MessageReply:
    """An assistant message exactly as some server shapes it (Ollama, vLLM, LM Studio, legacy
    ``function_call``): sent as given, with ``finish_reason`` (None: the key is left out)."""

    message: Mapping[str, object]
    finish_reason: str | None = "stop"


@dataclass(frozen=True)
class RawReply:
    """Any HTTP answer: error statuses, odd headers, bodies that are not JSON."""

    status: int
    body: str | bytes | Mapping[str, object] = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None  # default: application/json for a mapping, text/html for text


@dataclass(frozen=True)
class DelayedReply:
    """Wait, then answer: past the client's timeout this makes it time out."""

    seconds: float
    then: Reply


Reply = ToolCallReply | TextReply | MessageReply | RawReply | DelayedReply
Responder = Callable[[JsonObject], "Reply | Awaitable[Reply]"]
Scripted = Reply | Responder


# -- reply builders -------------------------------------------------------------------------------


def tool_call(
    name: str,
    arguments: Mapping[str, object] | str | None = None,
    *,
    id: str | None = None,
    content: str | None = None,
) -> ToolCallReply:
    """One native tool call; ``arguments`` as a str is sent raw (e.g. malformed JSON)."""
    return ToolCallReply(calls=(ToolCallSpec(name, {} if arguments is None else arguments, id),), content=content)


def tool_calls(*calls: tuple[str, Mapping[str, object] | str], content: str | None = None) -> ToolCallReply:
    """Several native tool calls in one assistant message."""
    return ToolCallReply(calls=tuple(ToolCallSpec(n, a) for n, a in calls), content=content)


def text(content: str | None, *, finish_reason: str = "stop") -> TextReply:
    return TextReply(content=content, finish_reason=finish_reason)


def text_tool_call(
    name: str,
    arguments: Mapping[str, object] | str,
    *,
    style: TextCallStyle = "json_fence",
    prose: str = "",
    key: Literal["arguments", "parameters"] = "arguments",
) -> TextReply:
    """A tool call written in ``content`` the way small local models do, no ``tool_calls`` field."""
    args: object = arguments if isinstance(arguments, str) else dict(arguments)
    payload = json.dumps({"name": name, key: args})
    body = {
        "json_fence": f"```json\n{payload}\n```",
        "tool_call_tag": f"<tool_call>\n{payload}\n</tool_call>",
        "bare_json": payload,
        "mistral": f"[TOOL_CALLS][{payload}]",
    }[style]
    return TextReply(content=f"{prose}\n{body}".strip() if prose else body)


def ollama_tool_call(
    name: str, arguments: Mapping[str, object], *, with_id: bool = False, with_index: bool = False,
    arguments_as_object: bool = False, finish_reason: str = "tool_calls",
) -> MessageReply:
    """Ollama's ``/v1``: ``content: ""``; ids and ``index`` missing in some versions; arguments sometimes an
    object rather than JSON text; older versions say ``finish_reason: "stop"`` beside tool calls."""
    call: JsonObject = {"type": "function", "function": {
        "name": name, "arguments": dict(arguments) if arguments_as_object else json.dumps(arguments)}}
    if with_id:
        call["id"] = "call_8f2kq1"
    if with_index:
        call["index"] = 0
    return MessageReply({"role": "assistant", "content": "", "tool_calls": [call]}, finish_reason)


def vllm_tool_call(name: str, arguments: Mapping[str, object], *, reasoning: str | None = None) -> MessageReply:
    """vLLM with a tool parser: ``content: null`` beside ``tool_calls``; with a reasoning parser, the
    model's thinking in ``reasoning_content`` (never an answer or a call)."""
    message: JsonObject = {"role": "assistant", "content": None, "tool_calls": [{
        "id": "chatcmpl-tool-5b3c0e7d", "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)}}]}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return MessageReply(message, "tool_calls")


def vllm_text(content: str, *, reasoning: str) -> MessageReply:
    """vLLM with a reasoning parser: the answer in ``content``, the thinking in ``reasoning_content``."""
    return MessageReply({"role": "assistant", "content": content, "reasoning_content": reasoning}, "stop")


def lmstudio_tool_call(name: str, arguments: Mapping[str, object]) -> MessageReply:
    """LM Studio: no ``content`` key at all, a numeric-looking id, arguments as JSON text."""
    return MessageReply({"role": "assistant", "tool_calls": [{
        "id": "365174485", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]},
        "tool_calls")


def legacy_function_call(name: str, arguments: Mapping[str, object]) -> MessageReply:
    """The pre-tools OpenAI shape some servers still send: ``function_call`` and that finish reason."""
    return MessageReply({"role": "assistant", "content": None,
                         "function_call": {"name": name, "arguments": json.dumps(arguments)}}, "function_call")


def sql_block(sql: str, *, prose: str = "") -> TextReply:
    """A text-mode answer: one fenced ```sql block (becomes a run_query call in text tool mode)."""
    return TextReply(content=f"{prose}\n```sql\n{sql}\n```".strip())


def question_of(content: object) -> str:
    """A user message as the user typed it: pgbot sends a question with its context first and the question
    last, after ``Question: `` (core.prompt.system); responders that key on the question use this."""
    text = str(content or "")
    marker = "\n\n" + QUESTION_LABEL
    return text.rsplit(marker, 1)[1] if marker in text else text


def last_question(request: JsonObject) -> str:
    """The question in a request's last message (see :func:`question_of`)."""
    messages = request.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else {}
    return question_of(last.get("content") if isinstance(last, dict) else None)


def prompt_text(request: JsonObject) -> str:
    """What pgbot told the model besides the history: the system message and, from the question's own
    user message (the last one on a turn's first call), the context sent with the question."""
    messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]  # type: ignore[attr-defined]
    users = [m for m in messages if m.get("role") == "user"]
    system = messages[0].get("content") if messages and messages[0].get("role") == "system" else ""
    return f"{system or ''}\n{users[-1].get('content') or '' if users else ''}"


def raw(
    status: int,
    body: str | bytes | Mapping[str, object] = "",
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
) -> RawReply:
    return RawReply(status=status, body=body, headers=dict(headers or {}), content_type=content_type)


def error(status: int, message: str, *, headers: Mapping[str, str] | None = None, code: str | None = None) -> RawReply:
    """An OpenAI-style error body: {"error": {"message": ..., "type": ..., "code": ...}}."""
    kind = code or {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": kind}}
    return RawReply(status=status, body=body, headers=dict(headers or {}))


def delay(seconds: float, then: Reply | None = None) -> DelayedReply:
    return DelayedReply(seconds=seconds, then=then or text("(late answer)"))


def always(reply: Reply, *, delay_s: float = 0.0) -> Responder:
    """A responder giving the same answer to every request (benchmarks: fixed latency + answer)."""
    answer = DelayedReply(delay_s, reply) if delay_s > 0 else reply

    def respond(_request: JsonObject) -> Reply:
        return answer

    return respond


# -- the server -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: JsonObject | None


class ScriptedLlmServer:
    """OpenAI-compatible endpoint on 127.0.0.1 with a free port; see the module docstring.

    Quirk flags emulate real servers: ``reject_null_content`` answers 500 when an assistant message has
    ``content: null`` (llama.cpp); ``reject_tools`` answers 400 to any request carrying ``tools``;
    ``serve_models=False`` makes ``GET /v1/models`` a 404 (servers without a model list).
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        models: tuple[str, ...] = ("test-model",),
        reject_null_content: bool = False,
        reject_tools: bool = False,
        serve_models: bool = True,
    ) -> None:
        self.responder = responder
        self.models = models
        self.reject_null_content = reject_null_content
        self.reject_tools = reject_tools
        self.serve_models = serve_models
        self.requests: list[JsonObject] = []  # JSON bodies of chat completion requests, in order
        self.received: list[ReceivedRequest] = []  # every HTTP request, any path
        self._queue: deque[Scripted] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def script(self, *replies: Scripted) -> None:
        """Queue replies (or one-shot responder callables), answered in order."""
        self._queue.extend(replies)

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def start(self) -> str:
        app = web.Application()
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/chat/completions", self._chat)
            app.router.add_get(f"{prefix}/models", self._models)
        # handler_cancellation: a client that timed out should not keep a delayed handler alive;
        # shutdown_timeout: stop() must not wait for such handlers.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2, access_log=None)
        port = await serve_locally(self._runner)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- handlers ---------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        self.received.append(ReceivedRequest(request.method, request.path, dict(request.headers), None))
        if not self.serve_models:
            return web.json_response({"error": {"message": "not found"}}, status=404)
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": "pgbot-tests"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.received.append(
            ReceivedRequest(
                request.method, request.path, dict(request.headers), body if isinstance(body, dict) else None
            )
        )
        if not isinstance(body, dict):
            return web.json_response({"error": {"message": "request body is not a JSON object"}}, status=400)
        self.requests.append(body)
        if self.reject_null_content and any(
            m.get("role") == "assistant" and m.get("content") is None for m in body.get("messages", [])
        ):
            return web.Response(
                status=500,
                text='{"error":{"code":500,"message":"assistant content is null"}}',
                content_type="application/json",
            )
        if self.reject_tools and "tools" in body:
            return web.json_response({"error": {"message": "tools are not supported"}}, status=400)
        if self._queue:
            item = self._queue.popleft()
        elif self.responder is not None:
            item = self.responder
        else:
            return web.Response(status=500, text="no scripted response", content_type="text/plain")
        reply = item if isinstance(item, ToolCallReply | TextReply | MessageReply | RawReply | DelayedReply) \
            else item(body)
        if inspect.isawaitable(reply):
            reply = await reply
        return await self._render(reply, body)

    async def _render(self, reply: Reply, request: JsonObject) -> web.StreamResponse:
        while isinstance(reply, DelayedReply):
            await asyncio.sleep(reply.seconds)
            reply = reply.then
        if isinstance(reply, RawReply):
            return _raw_response(reply)
        model = str(request.get("model", "test-model"))
        finish: str | None
        message: JsonObject
        if isinstance(reply, MessageReply):
            message, finish = dict(reply.message), reply.finish_reason
        elif isinstance(reply, ToolCallReply):
            message = {
                "role": "assistant",
                "content": reply.content,
                "tool_calls": [
                    {
                        "id": c.id or f"call_{next(self._ids)}",
                        "type": "function",
                        "function": {
                            "name": c.name,
                            "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments),
                        },
                    }
                    for c in reply.calls
                ],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": reply.content}
            finish = reply.finish_reason
        prompt_tokens = len(json.dumps(request.get("messages", []))) // 4
        completion_tokens = len(json.dumps(message)) // 4
        choice: JsonObject = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        if finish is None:
            del choice["finish_reason"]
        return web.json_response(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )


def _raw_response(reply: RawReply) -> web.Response:
    if isinstance(reply.body, Mapping):
        payload = json.dumps(reply.body).encode()
        content_type = reply.content_type or "application/json"
    else:
        payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
        content_type = reply.content_type or "text/html"
    return web.Response(status=reply.status, body=payload, headers=dict(reply.headers), content_type=content_type)

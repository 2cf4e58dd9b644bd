"""OpenAIClient over real HTTP against the scripted OpenAI-compatible server (nothing patched)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from pydantic import SecretStr

from core.config import LlmSettings
from core.errors import LlmAuthError, LlmError, LlmRateLimitError, LlmResponseError, LlmUnavailableError
from core.llm.base import ChatTurn, Completion, ToolCall, ToolSpec
from core.llm.memory import ScriptedLlm, ScriptExhaustedError, call
from core.llm.openai_client import TEXT_MODE_STOPS, OpenAIClient, normalize_base_url
from core.llm.textcalls import extract_sql_block, extract_text_tool_calls
from tests.llm_server import (
    JsonObject,
    Reply,
    ScriptedLlmServer,
    always,
    delay,
    error,
    raw,
    sql_block,
    text,
    text_tool_call,
    tool_call,
    tool_calls,
)

API_KEY = "sk-test-SECRET-9f8e7d6c5b4a"
RUN_QUERY = ToolSpec(
    name="run_query",
    description="Run one read-only SQL query.",
    parameters={"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]},
)
DESCRIBE = ToolSpec(
    name="describe_table",
    description="Describe a table.",
    parameters={"type": "object", "properties": {"table": {"type": "string"}}, "required": ["table"]},
)
TOOLS = [RUN_QUERY, DESCRIBE]
QUESTION = [
    ChatTurn(role="system", content="You are pgbot."),
    ChatTurn(role="user", content="How many users?"),
]


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLlmServer]:
    async with ScriptedLlmServer() as srv:
        yield srv


@asynccontextmanager
async def client_for(base_url: str | None, **overrides: object) -> AsyncIterator[OpenAIClient]:
    values: dict[str, object] = {
        "base_url": base_url,
        "api_key": SecretStr(API_KEY),
        "model": "test-model",
        "timeout_s": 2.0,
        "max_retries": 0,
    }
    values.update(overrides)
    client = OpenAIClient(LlmSettings.model_validate(values))
    try:
        yield client
    finally:
        await client.aclose()


def after_tool_result() -> list[ChatTurn]:
    """A turn's second step: the model called run_query (content null) and got a result."""
    call = ToolCall(id="call_1", name="run_query", arguments='{"sql": "SELECT count(*) FROM users"}')
    return [
        *QUESTION,
        ChatTurn(role="assistant", content=None, tool_calls=(call,)),
        ChatTurn(role="tool", tool_call_id="call_1", name="run_query", content="count\n42"),
    ]


# -- happy paths ----------------------------------------------------------------------------------


async def test_native_tool_call_round_trip(server: ScriptedLlmServer) -> None:
    server.script(tool_call("run_query", {"sql": "SELECT count(*) FROM users"}, id="call_abc"))
    async with client_for(server.base_url) as client:
        completion = await client.complete(QUESTION, TOOLS)
    assert completion.content is None
    assert completion.tool_calls == (
        ToolCall(id="call_abc", name="run_query", arguments='{"sql": "SELECT count(*) FROM users"}'),
    )
    assert completion.usage.prompt_tokens > 0
    sent = server.requests[0]
    assert sent["model"] == "test-model"
    assert sent["messages"] == [
        {"role": "system", "content": "You are pgbot."},
        {"role": "user", "content": "How many users?"},
    ]
    assert [t["function"]["name"] for t in sent["tools"]] == ["run_query", "describe_table"]
    assert sent["tools"][0]["function"]["parameters"] == RUN_QUERY.parameters
    assert sent["tool_choice"] == "auto"
    assert sent["temperature"] == 0.0
    assert server.received[0].headers["Authorization"] == f"Bearer {API_KEY}"
    assert client.tool_mode == "native"


async def test_several_native_calls_and_prose_answer(server: ScriptedLlmServer) -> None:
    server.script(
        tool_calls(("describe_table", {"table": "users"}), ("run_query", {"sql": "SELECT 1"})),
        text("There are 42 users."),
    )
    async with client_for(server.base_url) as client:
        first = await client.complete(QUESTION, TOOLS)
        second = await client.complete(after_tool_result(), TOOLS)
    assert [c.name for c in first.tool_calls] == ["describe_table", "run_query"]
    assert len({c.id for c in first.tool_calls}) == 2
    assert second.content == "There are 42 users."
    assert second.tool_calls == ()


@pytest.mark.parametrize(
    ("reply", "expected_text"),
    [
        (text_tool_call("run_query", {"sql": "SELECT 1"}, style="json_fence"), None),
        (
            text_tool_call("run_query", {"sql": "SELECT 1"}, style="json_fence", prose="Let me check."),
            "Let me check.",
        ),
        (text_tool_call("run_query", {"sql": "SELECT 1"}, style="tool_call_tag"), None),
        (text_tool_call("run_query", {"sql": "SELECT 1"}, style="bare_json"), None),
        (text_tool_call("run_query", {"sql": "SELECT 1"}, style="mistral"), None),
        (text_tool_call("run_query", {"sql": "SELECT 1"}, key="parameters"), None),
        (text_tool_call("run_query", json.dumps({"sql": "SELECT 1"})), None),  # arguments as a JSON string
        (
            text("<think>use run_query</think>\n" + text_tool_call("run_query", {"sql": "SELECT 1"}).content),
            None,
        ),
    ],
)
async def test_tool_calls_written_as_text_are_parsed(
    server: ScriptedLlmServer, reply: object, expected_text: str | None
) -> None:
    server.script(reply)  # type: ignore[arg-type]
    async with client_for(server.base_url) as client:
        completion = await client.complete(QUESTION, TOOLS)
    assert len(completion.tool_calls) == 1
    call = completion.tool_calls[0]
    assert (call.name, json.loads(call.arguments)) == ("run_query", {"sql": "SELECT 1"})
    assert call.id.startswith("call_text_")
    assert completion.content == expected_text


async def test_text_call_to_unknown_tool_stays_text(server: ScriptedLlmServer) -> None:
    reply = text_tool_call("drop_everything", {"sure": True})
    server.script(reply)
    async with client_for(server.base_url) as client:
        completion = await client.complete(QUESTION, TOOLS)
    assert completion.tool_calls == ()
    assert completion.content == reply.content


async def test_assistant_content_null_is_sent_as_empty_string() -> None:
    async with ScriptedLlmServer(reject_null_content=True) as server:
        server.script(text("42 users."))
        async with client_for(server.base_url) as client:
            completion = await client.complete(after_tool_result(), TOOLS)
    assert completion.content == "42 users."
    assistant, tool = server.requests[0]["messages"][2:]
    assert assistant["content"] == ""
    assert assistant["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "run_query", "arguments": '{"sql": "SELECT count(*) FROM users"}'},
        }
    ]
    assert tool == {"role": "tool", "content": "count\n42", "tool_call_id": "call_1"}


async def test_malformed_tool_arguments_pass_through_raw(server: ScriptedLlmServer) -> None:
    server.script(tool_call("run_query", '{"sql": "SELECT 1"'))
    async with client_for(server.base_url) as client:
        completion = await client.complete(QUESTION, TOOLS)
    assert completion.tool_calls[0].arguments == '{"sql": "SELECT 1"'


async def test_arguments_sent_as_object_become_json_text(server: ScriptedLlmServer) -> None:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c9",
                            "type": "function",
                            "function": {"name": "run_query", "arguments": {"sql": "SELECT 2"}},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    server.script(raw(200, body))
    async with client_for(server.base_url) as client:
        completion = await client.complete(QUESTION, TOOLS)
    assert completion.tool_calls == (ToolCall(id="c9", name="run_query", arguments='{"sql": "SELECT 2"}'),)
    assert completion.usage.prompt_tokens == 0


# -- tool modes and tool_choice -------------------------------------------------------------------


async def test_text_mode_sends_no_tools_and_reads_sql_blocks(server: ScriptedLlmServer) -> None:
    server.script(sql_block("SELECT count(*) FROM users", prose="I will count them."), text("42 users."))
    async with client_for(server.base_url, tool_mode="text") as client:
        first = await client.complete(QUESTION, TOOLS)
        second = await client.complete(after_tool_result(), TOOLS)
    assert first.tool_calls[0].name == "run_query"
    assert json.loads(first.tool_calls[0].arguments) == {"sql": "SELECT count(*) FROM users"}
    assert first.content == "I will count them."
    assert second.content == "42 users." and second.tool_calls == ()

    for sent in server.requests:
        assert "tools" not in sent and "tool_choice" not in sent
        assert all("tool_calls" not in m and m["role"] != "tool" for m in sent["messages"])
    system = server.requests[0]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are pgbot.")
    assert "run_query" in system["content"] and "describe_table" in system["content"]
    assert "```sql" in system["content"]
    messages = server.requests[1]["messages"]
    assert messages[2] == {"role": "assistant", "content": "```sql\nSELECT count(*) FROM users\n```"}
    assert messages[3] == {"role": "user", "content": "Result of run_query: count\n42"}


async def test_text_mode_stops_after_the_block_and_closes_the_fence_the_stop_cut(server: ScriptedLlmServer) -> None:
    # What a server sends back when generation stopped at TEXT_MODE_STOPS: the block without its closing fence.
    server.script(text("I will count them.\n```sql\nSELECT count(*) FROM users;\n"),
                  text('```json\n{"name": "describe_table", "arguments": {"table": "users"}}\n'),
                  text("There are 42 users; I used ```count(*)``` for it."), text("42 users."))
    async with client_for(server.base_url, tool_mode="text") as client:
        cut_sql = await client.complete(QUESTION, TOOLS)
        cut_json = await client.complete(QUESTION, TOOLS)
        prose = await client.complete(QUESTION, TOOLS)
        await client.complete(QUESTION, [])  # no tools, nothing to stop for
    assert json.loads(cut_sql.tool_calls[0].arguments) == {"sql": "SELECT count(*) FROM users;"}
    assert cut_sql.calls_from_text and cut_sql.content == "I will count them."
    assert cut_json.tool_calls[0].name == "describe_table"
    assert prose.tool_calls == () and prose.content == "There are 42 users; I used ```count(*)``` for it."
    assert [r.get("stop") for r in server.requests] == [list(TEXT_MODE_STOPS)] * 3 + [None]


async def test_native_mode_sends_no_stop_sequences(server: ScriptedLlmServer) -> None:
    server.script(text("42 users."))
    async with client_for(server.base_url, tool_mode="native") as client:
        completion = await client.complete(QUESTION, TOOLS)
    assert "stop" not in server.requests[0] and not completion.calls_from_text


async def test_auto_mode_switches_to_text_when_tools_are_rejected_and_remembers() -> None:
    async with ScriptedLlmServer(reject_tools=True) as server:
        server.script(sql_block("SELECT 1"), text("One."))
        async with client_for(server.base_url, tool_mode="auto") as client:
            first = await client.complete(QUESTION, TOOLS)
            second = await client.complete(after_tool_result(), TOOLS)
            assert client.tool_mode == "text"
    assert "tools" in server.requests[0]
    assert "tools" not in server.requests[1]
    assert "tools" not in server.requests[2]  # remembered: no second native attempt
    assert len(server.requests) == 3
    assert first.tool_calls[0].name == "run_query"
    assert second.content == "One."


async def test_auto_mode_stays_native_when_tools_work(server: ScriptedLlmServer) -> None:
    server.script(tool_call("run_query", {"sql": "SELECT 1"}), text("One."))
    async with client_for(server.base_url, tool_mode="auto") as client:
        await client.complete(QUESTION, TOOLS)
        await client.complete(after_tool_result(), TOOLS)
        assert client.tool_mode == "native"
    assert all("tools" in sent for sent in server.requests)


async def test_auto_mode_does_not_switch_on_auth_errors(server: ScriptedLlmServer) -> None:
    server.script(error(401, "bad key"))
    async with client_for(server.base_url, tool_mode="auto") as client:
        with pytest.raises(LlmAuthError):
            await client.complete(QUESTION, TOOLS)
        assert client.tool_mode is None
    assert len(server.requests) == 1


async def test_tool_choice_required_only_on_first_step(server: ScriptedLlmServer) -> None:
    server.script(tool_call("run_query", {"sql": "SELECT 1"}), text("One."))
    async with client_for(server.base_url, tool_choice="required") as client:
        await client.complete(QUESTION, TOOLS)
        await client.complete(after_tool_result(), TOOLS)
    assert [r["tool_choice"] for r in server.requests] == ["required", "auto"]


# -- base URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1//", "/v1/chat/completions"])
async def test_base_url_variants_reach_the_same_endpoint(server: ScriptedLlmServer, suffix: str) -> None:
    root = server.base_url.removesuffix("/v1")
    server.script(text("ok"))
    async with client_for(root + suffix) as client:
        assert (await client.complete(QUESTION, [])).content == "ok"
    assert server.received[-1].path == "/v1/chat/completions"
    assert "tools" not in server.requests[-1]


def test_normalize_base_url_keeps_gateway_paths() -> None:
    assert normalize_base_url(None) is None
    assert normalize_base_url("http://h:8080") == "http://h:8080/v1"
    assert normalize_base_url("https://gw.example/openai/deployments/x/") == "https://gw.example/openai/deployments/x"
    assert normalize_base_url("https://api.openai.com/v1/") == "https://api.openai.com/v1"


# -- errors ---------------------------------------------------------------------------------------


async def test_401_is_auth_error_without_the_key(server: ScriptedLlmServer) -> None:
    server.script(error(401, f"Incorrect API key provided: {API_KEY}"))
    async with client_for(server.base_url) as client:
        with pytest.raises(LlmAuthError) as info:
            await client.complete(QUESTION, TOOLS)
    assert API_KEY not in str(info.value) and API_KEY not in info.value.user_message
    assert "401" in info.value.user_message and "\n" not in info.value.user_message


async def test_server_detail_is_scrubbed_of_the_key(server: ScriptedLlmServer) -> None:
    server.script(error(422, f"bad request for key {API_KEY}"))
    async with client_for(server.base_url, tool_mode="native") as client:
        with pytest.raises(LlmError) as info:
            await client.complete(QUESTION, TOOLS)
    assert "bad request for key" in info.value.user_message
    assert API_KEY not in info.value.user_message


async def test_429_with_retry_after_is_retried(server: ScriptedLlmServer) -> None:
    server.script(error(429, "slow down", headers={"Retry-After": "0"}), text("ok"))
    async with client_for(server.base_url, max_retries=1) as client:
        assert (await client.complete(QUESTION, TOOLS)).content == "ok"
    assert len(server.requests) == 2


async def test_429_forever_is_rate_limit_error(server: ScriptedLlmServer) -> None:
    limited = error(429, "slow down", headers={"Retry-After": "0.05"})
    server.script(limited, limited)
    async with client_for(server.base_url, max_retries=1) as client:
        with pytest.raises(LlmRateLimitError):
            await client.complete(QUESTION, TOOLS)
    assert len(server.requests) == 2


async def test_500_is_unavailable(server: ScriptedLlmServer) -> None:
    server.script(raw(500, "<html>oops</html>"))
    async with client_for(server.base_url) as client:
        with pytest.raises(LlmUnavailableError, match="answered HTTP 500"):
            await client.complete(QUESTION, TOOLS)


async def test_nothing_scripted_fails_loudly(server: ScriptedLlmServer) -> None:
    async with client_for(server.base_url) as client:
        with pytest.raises(LlmUnavailableError, match="500"):
            await client.complete(QUESTION, TOOLS)


async def test_timeout_is_unavailable(server: ScriptedLlmServer) -> None:
    server.script(delay(3.0, text("too late")))
    started = time.monotonic()
    async with client_for(server.base_url, timeout_s=0.5) as client:
        with pytest.raises(LlmUnavailableError, match=r"timed out after 0\.5 s"):
            await client.complete(QUESTION, TOOLS)
    assert time.monotonic() - started < 2.5


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with client_for(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(LlmUnavailableError, match=f"Cannot connect .* 127.0.0.1:{port}"):
            await client.complete(QUESTION, TOOLS)


@pytest.mark.parametrize(
    "reply",
    [
        raw(200, "<html>oops</html>"),
        raw(200, "{not json", content_type="application/json"),
        raw(200, {"object": "chat.completion", "choices": []}),
        raw(200, {"error": {"message": "upstream failed"}}),
    ],
)
async def test_reply_that_is_not_a_completion_is_response_error(server: ScriptedLlmServer, reply: object) -> None:
    server.script(reply)  # type: ignore[arg-type]
    async with client_for(server.base_url) as client:
        with pytest.raises(LlmResponseError):
            await client.complete(QUESTION, TOOLS)


async def test_unknown_model_is_not_found(server: ScriptedLlmServer) -> None:
    server.script(error(404, "The model `nope` does not exist"))
    async with client_for(server.base_url, model="nope") as client:
        with pytest.raises(LlmError, match="'nope' not found at the endpoint"):
            await client.complete(QUESTION, TOOLS)


async def test_429_insufficient_quota_says_so(server: ScriptedLlmServer) -> None:
    server.script(error(429, "You exceeded your current quota", code="insufficient_quota"))
    async with client_for(server.base_url) as client:
        with pytest.raises(LlmRateLimitError, match="out of quota"):
            await client.complete(QUESTION, TOOLS)


# -- the harness's own quirk flags ----------------------------------------------------------------


async def test_server_quirk_flags_reject_like_real_servers() -> None:
    null_turn = {"role": "assistant", "content": None, "tool_calls": []}
    async with (
        ScriptedLlmServer(reject_null_content=True, reject_tools=True) as server,
        aiohttp.ClientSession() as http,
    ):
        url = f"{server.base_url}/chat/completions"
        async with http.post(url, json={"model": "m", "messages": [null_turn]}) as resp:
            assert resp.status == 500
        async with http.post(url, json={"model": "m", "messages": [], "tools": []}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["message"] == "tools are not supported"
        async with http.post(url, json={"model": "m", "messages": []}) as resp:
            assert resp.status == 500
            assert await resp.text() == "no scripted response"
    assert server.pending == 0 and len(server.requests) == 3


async def test_responders_answer_dynamically_after_the_queue() -> None:
    def echo(request: JsonObject) -> Reply:
        messages = request["messages"]
        assert isinstance(messages, list)
        return text(f"echo: {messages[-1]['content']}")

    async with ScriptedLlmServer(responder=always(text("steady"), delay_s=0.05)) as server:
        server.script(echo)
        async with client_for(server.base_url) as client:
            first = await client.complete(QUESTION, TOOLS)
            started = time.monotonic()
            second = await client.complete(QUESTION, TOOLS)
            assert time.monotonic() - started >= 0.05
    assert (first.content, second.content) == ("echo: How many users?", "steady")


# -- ping -----------------------------------------------------------------------------------------


async def test_ping_lists_models(server: ScriptedLlmServer) -> None:
    async with client_for(server.base_url) as client:
        await client.ping()
    assert [(r.method, r.path) for r in server.received] == [("GET", "/v1/models")]


async def test_ping_falls_back_to_a_one_token_completion() -> None:
    async with ScriptedLlmServer(serve_models=False) as server:
        server.script(text("p"))
        async with client_for(server.base_url) as client:
            await client.ping()
    assert server.requests[0]["max_tokens"] == 1


async def test_ping_maps_errors(server: ScriptedLlmServer) -> None:
    async with client_for(server.base_url.removesuffix("/v1") + "/nowhere") as client:
        with pytest.raises(LlmError, match="not found"):
            await client.ping()  # /nowhere/models 404 → completion at /nowhere 404 too


# -- the pure text-call parser --------------------------------------------------------------------


def test_extract_text_tool_calls_ignores_non_calls_and_numbers_ids() -> None:
    content = (
        'Example: ```json\n{"name": "run_query", "note": "not a call"}\n```\n'
        '<tool_call>{"name": "run_query", "arguments": {"sql": "SELECT 1"}}</tool_call>\n'
        '<tool_call>{"name": "describe_table", "arguments": {"table": "t"}}'
    )
    rest, calls = extract_text_tool_calls(content, {"run_query", "describe_table"}, first_id=5)
    assert [(c.id, c.name) for c in calls] == [
        ("call_text_5", "run_query"),
        ("call_text_6", "describe_table"),
    ]
    assert rest.startswith("Example:") and "not a call" in rest
    assert extract_text_tool_calls('{"name": "x", "arguments": {}}', {"run_query"}) == (
        '{"name": "x", "arguments": {}}',
        [],
    )


def test_extract_sql_block() -> None:
    assert extract_sql_block("Counting.\n```sql\nSELECT 1;\n```") == ("Counting.", "SELECT 1;")
    assert extract_sql_block("No SQL here.") == ("No SQL here.", None)


# -- the in-memory double for unit tests of the loop ----------------------------------------------


async def test_scripted_llm_replays_and_records() -> None:
    llm = ScriptedLlm(call("run_query", {"sql": "SELECT 1"}, call_id="c1"), "Done.", LlmUnavailableError())
    first = await llm.complete(QUESTION, TOOLS)
    assert first.tool_calls == (ToolCall(id="c1", name="run_query", arguments='{"sql": "SELECT 1"}'),)
    assert await llm.complete(after_tool_result(), TOOLS) == Completion(content="Done.")
    with pytest.raises(LlmUnavailableError):
        await llm.complete(QUESTION, TOOLS)
    with pytest.raises(ScriptExhaustedError):
        await llm.complete(QUESTION, TOOLS)
    assert [c.last.role for c in llm.calls] == ["user", "tool", "user", "user"]
    assert llm.calls[0].tool_names == ["run_query", "describe_table"]
    await llm.aclose()
    assert llm.closed

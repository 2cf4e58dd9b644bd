"""A local stand-in for Slack: the Web API methods pgbot calls, a Socket Mode WebSocket, and signed requests.

The Web API part answers the way Slack does (``{"ok": true, "channel": ..., "ts": ...}``) and records every
call, so tests assert on what pgbot really sent over HTTP. File uploads follow Slack's three steps
(files.getUploadURLExternal, a POST of the bytes to the URL it returned, files.completeUploadExternal).
``fail_next`` scripts HTTP failures (429 with Retry-After, 5xx, ``ok: false``) for one method.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from core.config import SlackSettings
from tests.helpers import handled, wait_until
from tests.services import serve_locally

BOT_USER_ID = "U0BOT00001"
BOT_ID = "B0BOT00001"
TEAM_ID = "T0TEAM0001"
APP_ID = "A0APP00001"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass(frozen=True, slots=True)
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class ApiCall:
    method: str
    args: dict[str, Any]
    authorization: str


class FakeSlack:
    """Web API methods under ``/api/``, and ``/link`` for Socket Mode."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.acks: list[dict[str, Any]] = []  # Socket Mode envelope acknowledgements from the app
        self.refuse_blocks_with: str | None = None  # answer invalid_blocks when the blocks contain this text
        self.refuse_tables = False  # answer invalid_attachments to any table block (a workspace without them)
        self.uploads: dict[str, bytes] = {}  # file id → the bytes posted to its upload URL
        self._failures: dict[str, list[Failure]] = {}
        self._ts = itertools.count(1)
        self._socket: web.WebSocketResponse | None = None
        self._socket_ready = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/link", self._link)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app)
        self.port = await serve_locally(self._runner)

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, method: str, *, status: int = 200, error: str | None = None,
                  headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with this HTTP status (and ``ok: false`` + ``error``)."""
        body = {"ok": False, "error": error or {429: "ratelimited"}.get(status, "fatal_error")}
        self._failures.setdefault(method, []).extend([Failure(status, body, headers or {})] * times)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update(await request.post())  # type: ignore[arg-type]
        for key in ("blocks", "files", "view"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        self.calls.append(ApiCall(method, args, request.headers.get("Authorization", "")))
        if self._failures.get(method):
            failure = self._failures[method].pop(0)
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        if self.refuse_blocks_with and self.refuse_blocks_with in json.dumps(args.get("blocks", [])):
            return web.json_response({"ok": False, "error": "invalid_blocks",
                                      "errors": ["failed to match all allowed schemas [json-pointer:/blocks/1]"]})
        refusal = table_refusal(args.get("blocks") or [], refuse_all=self.refuse_tables)
        if refusal is not None:
            return web.json_response(refusal)
        return web.json_response(self._answer(method, args))

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://pgbot-test.slack.com/", "team": "pgbot test", "user": "pgbot",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket=test-ticket"}
        if method == "chat.postMessage":
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            message = {"type": "message", "text": args.get("text", ""), "user": BOT_USER_ID, "bot_id": BOT_ID,
                       "ts": ts, "blocks": args.get("blocks", [])}
            if args.get("thread_ts"):
                message["thread_ts"] = args["thread_ts"]
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}
        if method == "chat.update":
            return {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": args.get("text", "")}
        if method == "chat.delete":
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
        if method == "views.open":  # a modal: Slack gives it an id and echoes it back
            view = args["view"]
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts):09d}", "team_id": TEAM_ID,
                                         "state": {"values": {}}, "hash": "156772938.1827394", "app_id": APP_ID,
                                         "bot_id": BOT_ID, "root_view_id": None, "previous_view_id": None}}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": f"D0{str(args.get('users', '')).removeprefix('U')[:8]}"}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):09d}"
            return {"ok": True, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title") or ""} for f in args["files"]]}
        return {"ok": False, "error": "unknown_method"}

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["file_id"]] = await request.read()
        return web.Response(text=f"OK - {len(self.uploads[request.match_info['file_id']])}")

    def of(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, done: Callable[[FakeSlack], bool], *, within_s: float = 10.0) -> None:
        """Bolt runs listeners after it has acknowledged the request, so tests wait for the calls to land."""
        await wait_until(lambda: done(self), describe=lambda: [c.method for c in self.calls], within_s=within_s)

    async def handled(self, *, within_s: float = 30.0) -> None:
        """Wait until bolt has run every listener of the requests dispatched so far to its end (before a
        check that nothing more is sent): the Web API calls they make have all been made by then."""
        await handled(is_bolt_listener, what="bolt listeners", within_s=within_s)

    # --- Socket Mode -----------------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._socket = ws
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "debug_info": {"host": "applink-test", "approximate_connection_time": 18060},
                            "connection_info": {"app_id": APP_ID}})
        self._socket_ready.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.acks.append(json.loads(msg.data))
        return ws

    async def send_envelope(self, envelope_type: str, payload: dict[str, Any], envelope_id: str) -> None:
        await asyncio.wait_for(self._socket_ready.wait(), timeout=10)
        assert self._socket is not None
        await self._socket.send_json({"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                                      "accepts_response_payload": False, "retry_attempt": 0, "retry_reason": ""})


def table_refusal(blocks: list[dict[str, Any]], *, refuse_all: bool = False) -> dict[str, Any] | None:
    """Slack's documented table block rules: one per message, at most 100 rows of at most 20 cells, cells
    ``raw_text`` (non-empty text) or ``rich_text``; a breach is refused as Slack refuses it."""
    tables = [b for b in blocks if b.get("type") == "table"]
    if not tables:
        return None
    if refuse_all or len(tables) > 1:
        return {"ok": False, "error": "invalid_attachments", "response_metadata": {
            "messages": ["only_one_table_allowed" if len(tables) > 1 else "table blocks are not enabled"]}}
    rows = tables[0].get("rows") or []
    valid = 0 < len(rows) <= 100 and all(
        0 < len(row) <= 20 and all(
            (c.get("type") == "raw_text" and isinstance(c.get("text"), str) and c["text"] != "")
            or (c.get("type") == "rich_text" and c.get("elements")) for c in row)
        for row in rows)
    settings = tables[0].get("column_settings")
    if settings is not None and (len(settings) > 20 or any(
            s is not None and (set(s) - {"align", "is_wrapped"} or s.get("align", "left") not in
                               ("left", "center", "right")) for s in settings)):
        valid = False
    if not valid:
        return {"ok": False, "error": "invalid_blocks", "errors": ["invalid table [json-pointer:/blocks]"]}
    return None


def signed_headers(body: str, *, content_type: str, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Headers Slack sends: v0 HMAC-SHA256 over ``v0:{timestamp}:{body}`` with the signing secret."""
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"content-type": content_type, "x-slack-request-timestamp": timestamp, "x-slack-signature": f"v0={digest}"}


def event_body(event: dict[str, Any]) -> str:
    """An Events API ``event_callback`` envelope, as Slack posts it (JSON)."""
    return json.dumps({
        "token": "XXYYZZ", "team_id": TEAM_ID, "context_team_id": TEAM_ID, "api_app_id": APP_ID,
        "event": event, "type": "event_callback", "event_id": f"Ev{abs(hash(event['ts'])) % 10**10:010d}",
        "event_time": int(float(event["ts"])),
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0",
    })


def app_mention(text: str, *, ts: str, channel: str = "C0CHAN0001", user: str = "U0USER0001",
                thread_ts: str | None = None) -> dict[str, Any]:
    """An ``app_mention`` event as Slack sends it (text keeps the ``<@BOT>`` markup and HTML escaping)."""
    event: dict[str, Any] = {
        "client_msg_id": "c0ffee00-0000-4000-8000-000000000001", "type": "app_mention", "text": text,
        "user": user, "ts": ts, "team": TEAM_ID,
        "blocks": [{"type": "rich_text", "block_id": "Xy1", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}],
        "channel": channel, "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def thread_message(text: str, *, ts: str, thread_ts: str, channel: str = "C0CHAN0001",
                   user: str = "U0USER0001", **extra: Any) -> dict[str, Any]:
    """A ``message`` event for a reply in a thread."""
    return {
        "client_msg_id": "c0ffee00-0000-4000-8000-000000000002", "type": "message", "text": text, "user": user,
        "ts": ts, "team": TEAM_ID, "thread_ts": thread_ts, "parent_user_id": user, "channel": channel,
        "event_ts": ts, "channel_type": "channel", **extra,
    }


def block_actions(*, action_id: str, value: str, message: dict[str, Any], user: str = "U0APPROVER",
                  channel: str = "C0CHAN0001") -> str:
    """A ``block_actions`` interaction, form-encoded as ``payload=<json>`` like Slack posts it."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "approver", "name": "approver", "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": "XXYYZZ",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False,
                      **({"thread_ts": message["thread_ts"]} if "thread_ts" in message else {})},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": TEAM_ID, "domain": "pgbot-test"}, "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": "db-ops"},
        "message": message,
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0TEAM0001/1/abc",
        "actions": [{"action_id": action_id, "block_id": "pgbot_decision", "value": value, "type": "button",
                     "text": {"type": "plain_text", "text": "x", "emoji": True}, "action_ts": "1700000000.000100"}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def view_submission(view: dict[str, Any], *, values: dict[str, dict[str, Any]], user: str = "U0USER0001",
                    team: str = TEAM_ID) -> str:
    """A ``view_submission`` interaction for a modal pgbot opened (``view``: as views.open returned it), with
    the inputs' ``values`` ({block_id: {action_id: value}}), form-encoded like Slack posts it."""
    state = {block: {action: {"type": "plain_text_input", "value": value} for action, value in inputs.items()}
             for block, inputs in values.items()}
    payload = {
        "type": "view_submission",
        "team": {"id": team, "domain": "pgbot-test"},
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
        "api_app_id": APP_ID, "token": "XXYYZZ", "trigger_id": "13345224609.738474920.8088930838d88f008e1",
        "view": {**view, "state": {"values": state}},
        "response_urls": [], "is_enterprise_install": False, "enterprise": None,
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def slack_settings(fake: FakeSlack, **overrides: object) -> SlackSettings:
    values: dict[str, object] = {
        "bot_token": "xoxb-1111-2222-test", "signing_secret": SIGNING_SECRET, "api_base_url": fake.api_url,
    }
    values.update(overrides)
    return SlackSettings.model_validate(values)


def is_bolt_listener(task: asyncio.Task[Any]) -> bool:
    """A listener bolt runs after acknowledging a request (``AsyncioListenerRunner`` starts each one with
    ``asyncio.ensure_future``, unnamed): known by its coroutine. tests/adapters/slack/test_app.py checks that
    this still finds a listener that is running."""
    return getattr(task.get_coro(), "__qualname__", "").endswith(".run_ack_function_asynchronously")


async def dispatch(app: AsyncApp, body: str, *, content_type: str = "application/json") -> BoltResponse:
    """Hand a signed request to bolt exactly as its HTTP adapters do."""
    headers = signed_headers(body, content_type=content_type)
    return await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))


_TS = itertools.count(int(time.time()) * 1_000_000)


def new_ts() -> str:
    """A fresh, unique Slack message timestamp."""
    n = next(_TS)
    return f"{n // 1_000_000}.{n % 1_000_000:06d}"

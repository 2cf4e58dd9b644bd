"""A local stand-in for Discord's REST API plus builders for real gateway payloads.

discord.py's HTTP client is pointed here (``DiscordSettings.api_base_url`` → ``Route.BASE``); gateway
events are fed to the client's real ``ConnectionState`` parsers, so discord.py's own dispatch runs pgbot's
handlers. Every REST call is recorded; answers have the shapes Discord documents.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

from tests.helpers import handled, wait_until
from tests.services import serve_locally

GUILD_ID = "1200000000000000001"
CHANNEL_ID = "1200000000000000002"
BOT_ID = "1200000000000000003"
APP_ID = BOT_ID  # for bots created since 2021 the application id is the bot user id
BOT_ROLE_ID = "1200000000000000004"
USER_ID = "1200000000000000005"
APPROVER_ID = "1200000000000000006"
DM_CHANNEL_ID = "1200000000000000007"
OTHER_BOT_ID = "1200000000000000008"

_snowflakes = itertools.count(1300000000000000000 + int(time.time() * 1000) % 10**9 * 1000)


def _json(data: Any, *, status: int = 200) -> web.Response:
    """JSON exactly as Discord labels it: discord.py compares the content type without parameters."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _ok(data: Any, *, status: int = 200) -> tuple[int, Any]:
    return status, data


def snowflake() -> str:
    return str(next(_snowflakes))


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def user(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user_id, "username": name, "global_name": name.title(), "discriminator": "0",
                            "avatar": None, "public_flags": 0, "flags": 0, "banner": None, "accent_color": None,
                            "avatar_decoration_data": None, "primary_guild": None, "collectibles": None}
    if bot:
        data["bot"] = True
    return data


BOT_USER = user(BOT_ID, "pgbot", bot=True)


def member(person: dict[str, Any] | None = None, *, roles: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"roles": roles or [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False,
                            "mute": False, "flags": 0, "pending": False, "premium_since": None, "nick": None,
                            "avatar": None, "banner": None, "communication_disabled_until": None}
    if person is not None:
        data["user"] = person
    return data


@dataclass(slots=True)
class RestCall:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    response: Any = None
    status: int = 200
    files: dict[str, bytes] = field(default_factory=dict)  # multipart uploads: filename → content
    at: float = field(default_factory=time.monotonic)  # when it arrived (same clock as the test process)


@dataclass(slots=True)
class Fault:
    """Answer the next ``times`` calls of ``method`` on a path starting with ``path`` with this error."""

    method: str
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


def rate_limited(method: str, path: str, *, retry_after: float = 0.05) -> Fault:
    """A 429 exactly as Discord sends it (through Cloudflare, hence ``Via``), with the X-RateLimit headers."""
    return Fault(method, path, 429, {"message": "You are being rate limited.", "retry_after": retry_after,
                                     "global": False},
                 headers={"Via": "1.1 google", "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                          "X-RateLimit-Reset-After": str(retry_after), "X-RateLimit-Bucket": "abcd1234",
                          "X-RateLimit-Scope": "user", "Retry-After": "1"})


def missing_permissions(method: str, path: str, *, times: int = 1) -> Fault:
    return Fault(method, path, 403, {"message": "Missing Permissions", "code": 50013}, times=times)


class FakeDiscord:
    """The REST endpoints pgbot's Discord adapter reaches, answering like Discord."""

    def __init__(self) -> None:
        self.calls: list[RestCall] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self._interaction_message: dict[str, dict[str, Any]] = {}  # token → the message clicked on / the response
        self._command_channel: dict[str, str] = {}  # token → channel of a slash command
        self.refuse_embeds_with: str | None = None  # answer 400 Invalid Form Body when embeds contain this
        self.faults: list[Fault] = []
        self.channels: dict[str, dict[str, Any]] = {}  # threads opened through the API, for GET /channels/<id>
        self.commands: list[dict[str, Any]] = []  # the application commands last registered
        self.identify: dict[str, Any] | None = None  # the gateway IDENTIFY payload, once a client connected
        self.identified = 0  # how many gateway sessions were opened (IDENTIFY)
        self.resumes: list[dict[str, Any]] = []  # the RESUME payloads received, in order
        self.ready_gate = asyncio.Event()  # READY is sent once this is set (a test may clear it to hold it back)
        self.ready_gate.set()
        self._sessions: list[asyncio.Queue[tuple[str, dict[str, Any]]]] = []  # connected clients' outboxes
        self._backlog: list[tuple[str, dict[str, Any]]] = []  # dispatched while no client was connected
        self._replay: list[tuple[str, dict[str, Any]]] = []  # sent to the next client that resumes
        self._sequence = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.members: dict[str, dict[str, Any]] = {}  # user id → guild member (GET /guilds/<id>/members/<id>)

    def fail(self, fault: Fault) -> None:
        self.faults.append(fault)

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event to every connected client (after READY and GUILD_CREATE), as Discord does to
        each session of a bot on one shard; with none connected yet, to the next one that connects."""
        if not self._sessions:
            self._backlog.append((event, data))
        for outbox in self._sessions:
            outbox.put_nowait((event, data))

    def reconnect(self, *, replay: list[tuple[str, dict[str, Any]]]) -> None:
        """Ask every client to reconnect (op 7 RECONNECT); the one that RESUMEs gets ``replay`` before RESUMED,
        as Discord replays the events it thinks the session missed."""
        self._replay = list(replay)
        for outbox in self._sessions:
            outbox.put_nowait(("", {"op": 7}))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        app.router.add_get("/gateway", self._gateway)
        self._runner = web.AppRunner(app)
        self.port = await serve_locally(self._runner)

    async def stop(self) -> None:
        for outbox in self._sessions:
            outbox.put_nowait(("", {}))
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        files: dict[str, bytes] = {}
        if request.content_type == "multipart/form-data":  # discord.py's upload: payload_json + files[n]
            body = None
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                else:
                    files[part.filename or str(part.name)] = bytes(await part.read())
        else:
            body = await request.json() if request.can_read_body else None
        call = RestCall(request.method, path, dict(request.query), body, files=files)
        if request.headers.get("Authorization") == "Bot rejected-token":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and path.startswith(fault.path):
                fault.times -= 1
                call.response, call.status = fault.body, fault.status
                self.calls.append(call)
                response = _json(fault.body, status=fault.status)
                response.headers.update(fault.headers)
                return response
        if request.method == "DELETE" and "/messages/" in path:  # a message pgbot deleted
            self.messages.pop(path.rsplit("/", 1)[-1], None)
            call.status = 204
            self.calls.append(call)
            return web.Response(status=204)
        if path.endswith("/typing"):
            call.status = 204
            self.calls.append(call)
            return web.Response(status=204)
        if self.refuse_embeds_with and self.refuse_embeds_with in json.dumps((body or {}).get("embeds", [])):
            call.response = {"message": "Invalid Form Body", "code": 50035,
                             "errors": {"embeds": {"0": {"description": {"_errors": [
                                 {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."}]}}}}}
            self.calls.append(call)
            return _json(call.response, status=400)
        call.status, call.response = self._answer(request.method, path, body)
        if files and call.status < 300 and isinstance(call.response, dict) and "attachments" in call.response:
            call.response["attachments"] = [
                {"id": snowflake(), "filename": name, "size": len(data), "url": f"https://cdn.invalid/{name}",
                 "proxy_url": f"https://cdn.invalid/{name}"} for name, data in files.items()]
        self.calls.append(call)
        return _json(call.response, status=call.status)

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        route = (method, *[p if not p.isdigit() and p != "@original" else "#" for p in parts])
        if route == ("GET", "users", "@me"):
            return _ok(BOT_USER)
        if route == ("GET", "oauth2", "applications", "@me"):
            return _ok({
                "id": APP_ID, "name": "pgbot", "icon": None, "description": "", "bot_public": False,
                "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 0, "owner": user(USER_ID, "owner"),
                "team": None, "summary": "", "rpc_origins": [], "bot": BOT_USER,
            })
        if route == ("GET", "gateway", "bot"):
            return _ok({"url": f"ws://127.0.0.1:{self.port}/gateway", "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}})
        if route == ("PUT", "applications", "#", "commands"):
            self.commands = [{**c, "id": snowflake(), "application_id": APP_ID, "version": snowflake(),
                              "default_member_permissions": None, "type": c.get("type", 1)} for c in body]
            return _ok(self.commands)
        if route == ("GET", "guilds", "#", "members", "#"):
            found = self.members.get(parts[3]) if parts[1] == GUILD_ID else None
            return _ok(found) if found else _ok({"message": "Unknown Member", "code": 10007}, status=404)
        if route == ("GET", "channels", "#"):
            known = self.channels.get(parts[1])
            return _ok(known) if known else _ok({"message": "Unknown Channel", "code": 10003}, status=404)
        if route == ("POST", "channels", "#", "messages", "#", "threads"):
            thread = thread_channel(thread_id=parts[3], name=body["name"], parent_id=parts[1])
            self.channels[parts[3]] = thread
            return _ok(thread, status=201)
        if route == ("POST", "channels", "#", "messages"):
            return _ok(self._store(snowflake(), parts[1], body, author=BOT_USER))
        if route == ("PATCH", "channels", "#", "messages", "#"):
            return _ok(self._store(parts[3], parts[1], body, author=BOT_USER))
        if route == ("POST", "interactions", "#", parts[2], "callback"):
            response_type = body["type"]
            if response_type in (4, 5) and parts[2] in self._command_channel:  # the command's own response
                flags = (body.get("data") or {}).get("flags", 0) | (128 if response_type == 5 else 0)  # loading
                loading = body["data"] if response_type == 4 else {"content": "", "flags": flags}
                message = self._store(snowflake(), self._command_channel[parts[2]], loading, author=BOT_USER,
                                      webhook=APP_ID)
                self._interaction_message[parts[2]] = message
            return _ok({
                "interaction": {"id": parts[1], "type": 3, "response_message_loading": response_type == 5,
                                "response_message_ephemeral": bool((body.get("data") or {}).get("flags", 0) & 64)},
                "resource": {"type": response_type},
            })
        if route == ("POST", "webhooks", "#", parts[2]):
            channel = self._interaction_message[parts[2]]["channel_id"]
            return _ok(self._store(snowflake(), channel, body, author=BOT_USER, webhook=APP_ID))
        if route == ("GET", "webhooks", "#", parts[2], "messages", "#"):
            original = self._interaction_message.get(parts[2])
            if original is None:
                return _ok({"message": "Unknown Message", "code": 10008}, status=404)
            return _ok(self.messages[original["id"]])
        if route == ("PATCH", "webhooks", "#", parts[2], "messages", "#"):
            original = self._interaction_message.get(parts[2])
            if original is None:
                return _ok({"message": "Unknown Message", "code": 10008}, status=404)
            return _ok(self._store(original["id"], original["channel_id"], body, author=BOT_USER))
        return _ok({"message": "404: Not Found", "code": 0}, status=404)

    def _store(self, message_id: str, channel_id: str, body: dict[str, Any], *, author: dict[str, Any],
               webhook: str | None = None) -> dict[str, Any]:
        old = self.messages.get(message_id, {})
        message = {
            "id": message_id, "channel_id": channel_id, "author": author, "type": 0, "flags": body.get("flags", 0),
            "content": body.get("content", old.get("content", "")),
            "embeds": body.get("embeds", old.get("embeds", [])),
            "components": body.get("components", old.get("components", [])),
            "timestamp": old.get("timestamp", now_iso()), "edited_timestamp": now_iso() if old else None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
            "pinned": False,
        }
        if webhook:
            message["webhook_id"] = webhook
        self.messages[message_id] = message
        return message

    def click(self, custom_id: str, *, message: dict[str, Any], thread: dict[str, Any],
              clicker: dict[str, Any], roles: list[str] | None = None) -> dict[str, Any]:
        """INTERACTION_CREATE for a click on ``message``; the fake remembers the token like Discord does."""
        payload = interaction_create(custom_id, message=message, thread=thread, clicker=clicker, roles=roles)
        self._interaction_message[payload["token"]] = message
        return payload

    def submit_modal(self, modal: dict[str, Any], values: dict[str, str], *, message: dict[str, Any],
                     thread: dict[str, Any], submitter: dict[str, Any], roles: list[str] | None = None
                     ) -> dict[str, Any]:
        """INTERACTION_CREATE for a modal submitted in ``thread`` (``modal``: the data of the type 9 response
        that opened it; ``values``: text input custom_id → what was typed). Its response (a deferred message)
        is a new message in the thread, as Discord makes it."""
        payload = modal_submit(modal, values, message=message, thread=thread, submitter=submitter, roles=roles)
        self._command_channel[payload["token"]] = thread["id"]
        return payload

    def command(self, question: str, *, channel: dict[str, Any], invoker: dict[str, Any],
                guild: bool = True, roles: list[str] | None = None) -> dict[str, Any]:
        """INTERACTION_CREATE for ``/pgbot ask question:…`` typed in ``channel``."""
        payload = command_interaction(question, channel=channel, invoker=invoker, guild=guild, roles=roles)
        self._command_channel[payload["token"]] = channel["id"]
        return payload

    def of(self, method: str, *path_start: str) -> list[RestCall]:
        """Calls of ``method`` under a path; typing triggers only when asked for by path."""
        prefix = "/" + "/".join(path_start)
        return [c for c in self.calls if c.method == method and c.path.startswith(prefix)
                and (not c.path.endswith("/typing") or prefix.endswith("/typing"))]

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """A gateway as Discord runs it: HELLO, then READY + GUILD_CREATE after IDENTIFY (or the replayed events
        and RESUMED after RESUME), then the dispatched events; op 7 when asked to make the client reconnect."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45000}, "s": None, "t": None})
        outbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        opened: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def read() -> None:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                if payload["op"] == 1:
                    await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
                elif payload["op"] in (2, 6) and not opened.done():
                    if payload["op"] == 2:
                        self.identify = payload["d"]
                        self.identified += 1
                    else:
                        self.resumes.append(payload["d"])
                    self._sessions.append(outbox)  # dispatched from now on reaches this client
                    opened.set_result("IDENTIFY" if payload["op"] == 2 else "RESUME")
            outbox.put_nowait(("", {}))  # the client hung up: stop sending
            if not opened.done():
                opened.set_result("")

        reader = asyncio.create_task(read())
        try:
            kind = await opened
            if kind == "IDENTIFY":
                await self.ready_gate.wait()
                await self._send(ws, "READY", {**ready(), "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway"})
                await self._send(ws, "GUILD_CREATE", guild_create())
            elif kind == "RESUME":
                replay, self._replay = self._replay, []
                for event, data in replay:
                    await self._send(ws, event, data)
                await self._send(ws, "RESUMED", {})
            backlog, self._backlog = self._backlog, []
            for item in backlog:
                outbox.put_nowait(item)
            while True:
                event, data = await outbox.get()
                if ws.closed or (not event and not data):
                    break
                if not event:  # an opcode, not a dispatch
                    await ws.send_json({**data, "d": None, "s": None, "t": None})
                    continue
                await self._send(ws, event, data)
        finally:
            if outbox in self._sessions:
                self._sessions.remove(outbox)
            reader.cancel()
            await ws.close()
        return ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        await ws.send_json({"op": 0, "t": event, "s": self._sequence, "d": data})

    async def wait_for(self, done: Callable[[FakeDiscord], bool], *, within_s: float = 10.0) -> None:
        await wait_until(lambda: done(self), describe=lambda: [(c.method, c.path) for c in self.calls],
                         within_s=within_s)

    async def handled(self, *, within_s: float = 30.0) -> None:
        """Wait until discord.py has run every handler of the events and interactions given so far to its end
        (before a check that nothing more is sent): the REST calls they make have all been made by then."""
        await handled(is_discord_handler, what="discord.py handlers", within_s=within_s)


# The tasks discord.py runs handlers in, by the names it gives them: events (``Client._schedule_event``),
# component and modal callbacks (``discord.ui``), slash commands (``CommandTree``).
# tests/adapters/discord/test_bot.py checks that these still find a handler that is running.
DISCORD_HANDLER_TASKS = ("discord.py: on_", "discord-ui-dynamic-item-", "discord-ui-view-dispatch-",
                         "discord-ui-modal-dispatch-", "CommandTree-invoker")


def is_discord_handler(task: asyncio.Task[Any]) -> bool:
    return task.get_name().startswith(DISCORD_HANDLER_TASKS)


# --- gateway payloads --------------------------------------------------------------------------------------

def ready() -> dict[str, Any]:
    """READY, as the gateway sends it to a bot (guilds arrive as unavailable, then GUILD_CREATE each)."""
    return {"v": 10, "user": BOT_USER, "guilds": [{"id": GUILD_ID, "unavailable": True}],
            "session_id": "0123456789abcdef0123456789abcdef", "resume_gateway_url": "wss://gateway.invalid",
            "shard": [0, 1], "application": {"id": APP_ID, "flags": 0}, "private_channels": [],
            "user_settings": {}, "relationships": [], "presences": [], "guild_join_requests": [],
            "geo_ordered_rtc_regions": [], "auth": {}}


def guild_create() -> dict[str, Any]:
    everyone = {"id": GUILD_ID, "name": "@everyone", "permissions": "2248473465835073", "position": 0,
                "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0, "icon": None,
                "unicode_emoji": None}
    bot_role = {**everyone, "id": BOT_ROLE_ID, "name": "pgbot", "managed": True, "position": 1,
                "tags": {"bot_id": BOT_ID}}
    channel = {"id": CHANNEL_ID, "type": 0, "guild_id": GUILD_ID, "name": "db-ops", "position": 0,
               "permission_overwrites": [], "parent_id": None, "nsfw": False, "topic": None,
               "rate_limit_per_user": 0, "last_message_id": None, "flags": 0}
    return {
        "id": GUILD_ID, "name": "pgbot test", "icon": None, "splash": None, "discovery_splash": None,
        "owner_id": USER_ID, "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0,
        "default_message_notifications": 0, "explicit_content_filter": 0, "roles": [everyone, bot_role],
        "emojis": [], "stickers": [], "features": [], "mfa_level": 0, "application_id": None,
        "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None, "vanity_url_code": None,
        "description": None, "banner": None, "premium_tier": 0, "preferred_locale": "en-US",
        "public_updates_channel_id": None, "nsfw_level": 0, "premium_progress_bar_enabled": False,
        "joined_at": "2024-01-01T00:00:00+00:00", "large": False, "unavailable": False, "member_count": 3,
        "voice_states": [], "members": [member(BOT_USER, roles=[BOT_ROLE_ID])], "channels": [channel],
        "threads": [], "presences": [], "stage_instances": [], "guild_scheduled_events": [],
        "soundboard_sounds": [], "lazy": True,
    }


def guild_role(role_id: str, name: str, *, position: int = 2) -> dict[str, Any]:
    """A guild role as in GUILD_CREATE's ``roles`` and GUILD_ROLE_CREATE."""
    return {"id": role_id, "name": name, "permissions": "0", "position": position, "color": 0, "hoist": False,
            "managed": False, "mentionable": False, "flags": 0, "icon": None, "unicode_emoji": None}


def thread_channel(*, thread_id: str, name: str, parent_id: str = CHANNEL_ID, owner_id: str = BOT_ID) -> dict[str, Any]:
    """A public thread (type 11) as returned by "start thread from message" and sent in THREAD_CREATE."""
    return {"id": thread_id, "type": 11, "guild_id": GUILD_ID, "parent_id": parent_id, "owner_id": owner_id,
            "name": name, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0, "member_count": 1,
            "message_count": 0, "total_message_sent": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "archive_timestamp": now_iso(),
                                "locked": False, "create_timestamp": now_iso()}}


def message_create(content: str, *, channel_id: str = CHANNEL_ID, author: dict[str, Any] | None = None,
                   mentions: list[dict[str, Any]] | None = None, mention_roles: list[str] | None = None,
                   guild: bool = True, message_type: int = 0, roles: list[str] | None = None) -> dict[str, Any]:
    """MESSAGE_CREATE for a message a person typed (guild text channel, thread, or DM)."""
    author = author or user(USER_ID, "alice")
    data: dict[str, Any] = {
        "type": message_type, "tts": False, "timestamp": now_iso(), "pinned": False, "nonce": snowflake(),
        "mentions": mentions or [], "mention_roles": mention_roles or [], "mention_everyone": False,
        "id": snowflake(), "flags": 0, "embeds": [], "edited_timestamp": None, "content": content,
        "components": [], "channel_id": channel_id, "author": author, "attachments": [],
    }
    if guild:
        data["guild_id"] = GUILD_ID
        data["member"] = member(roles=roles)
        data["channel_type"] = 0 if channel_id == CHANNEL_ID else 11
    else:
        data["channel_type"] = 1
    return data


def interaction_create(custom_id: str, *, message: dict[str, Any], thread: dict[str, Any],
                       clicker: dict[str, Any], roles: list[str] | None = None) -> dict[str, Any]:
    """INTERACTION_CREATE for a button click (type 3, component_type 2) on one of pgbot's messages."""
    return {
        "type": 3, "id": snowflake(), "application_id": APP_ID, "token": f"aW50ZXJhY3Rpb246{snowflake()}",
        "version": 1, "guild_id": GUILD_ID, "guild": {"id": GUILD_ID, "locale": "en-US", "features": []},
        "channel_id": thread["id"], "channel": {**thread, "permissions": "2248473465835073"},
        "member": {**member(clicker, roles=roles), "permissions": "2248473465835073"},
        "data": {"custom_id": custom_id, "component_type": 2},
        "message": message, "app_permissions": "2248473465835073", "locale": "en-US", "guild_locale": "en-US",
        "entitlements": [], "authorizing_integration_owners": {"0": GUILD_ID}, "context": 0,
        "attachment_size_limit": 10485760,
    }


def modal_submit(modal: dict[str, Any], values: dict[str, str], *, message: dict[str, Any],
                 thread: dict[str, Any], submitter: dict[str, Any], roles: list[str] | None = None) -> dict[str, Any]:
    """INTERACTION_CREATE for a modal submission (type 5) opened from a button on ``message``: the inputs come
    back as action rows of text inputs (type 4) with their values."""
    rows = [{"type": 1, "components": [{"type": 4, "custom_id": custom_id, "value": value}]}
            for custom_id, value in values.items()]
    payload = interaction_create(modal["custom_id"], message=message, thread=thread, clicker=submitter,
                                 roles=roles)
    payload.update({"type": 5, "token": f"bW9kYWw{snowflake()}",
                    "data": {"custom_id": modal["custom_id"], "components": rows}})
    return payload


def text_inputs(modal: dict[str, Any]) -> list[dict[str, Any]]:
    """The text inputs of a modal as pgbot sent it (in action rows, or in labels)."""
    found: list[dict[str, Any]] = []
    for row in modal["components"]:
        inner = row.get("components") or ([row["component"]] if "component" in row else [])
        found.extend(c for c in inner if c.get("type") == 4)
    return found


def command_interaction(question: str, *, channel: dict[str, Any], invoker: dict[str, Any],
                        guild: bool = True, roles: list[str] | None = None) -> dict[str, Any]:
    """INTERACTION_CREATE for a chat-input command (type 2): ``/pgbot ask question:<question>``."""
    data: dict[str, Any] = {
        "type": 2, "id": snowflake(), "application_id": APP_ID, "token": f"Y29tbWFuZDo{snowflake()}",
        "version": 1, "channel_id": channel["id"], "channel": {**channel, "permissions": "2248473465835073"},
        "data": {"id": "1200000000000000900", "name": "pgbot", "type": 1,
                 "options": [{"type": 1, "name": "ask", "options": [
                     {"type": 3, "name": "question", "value": question}]}]},
        "app_permissions": "2248473465835073", "locale": "en-US", "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID} if guild else {"1": invoker["id"]},
        "context": 0 if guild else 1, "attachment_size_limit": 10485760,
    }
    if guild:
        data.update({"guild_id": GUILD_ID, "guild": {"id": GUILD_ID, "locale": "en-US", "features": []},
                     "guild_locale": "en-US",
                     "member": {**member(invoker, roles=roles), "permissions": "2248473465835073"}})
    else:
        data["user"] = invoker
    return data


def text_channel() -> dict[str, Any]:
    """#db-ops as an interaction carries it."""
    return {"id": CHANNEL_ID, "type": 0, "guild_id": GUILD_ID, "name": "db-ops", "position": 0,
            "permission_overwrites": [], "parent_id": None, "nsfw": False, "topic": None,
            "rate_limit_per_user": 0, "last_message_id": None, "flags": 0}


def result_text(payload: dict[str, Any]) -> str:
    """What a person reads of the result embed of a sent or edited message: the grid, or "name: value" lines
    for a one-row result, then the footer (the note and the context line)."""
    embed = next(e for e in payload["embeds"] if e.get("title") != "SQL")
    fields = [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    parts = [embed.get("description") or "", *fields, (embed.get("footer") or {}).get("text", "")]
    return "\n".join(p for p in parts if p)


def sql_text(payload: dict[str, Any]) -> str:
    """The SQL embed's code block, when the reply shows its SQL inline."""
    return str(next(e for e in payload["embeds"] if e.get("title") == "SQL")["description"])

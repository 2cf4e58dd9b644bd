"""Edit SQL in Slack: the button opens a modal with the answer's statement; its submission runs in the thread.

A click opens the modal at once with the click's ``trigger_id`` (valid 3 seconds): a multiline
``plain_text_input`` holding the answer's last statement, laid out (Slack's limit for that input is 3000
characters; a longer statement gets no button, the answer says to use /sql). The modal's
``private_metadata`` holds where the answer is (team, channel, thread), its id and the clicker, signed with a
key derived from the bot token (every replica has it, nobody in Slack does): a submission whose metadata
was changed, or that comes from someone else, is refused in the modal. Core checks again that the answer
belongs to that thread, and ``allowed_teams``/``allowed_channels`` apply to the thread's channel.

A submission is acknowledged at once: with the problem shown under the input when the text is empty, too
long, not one parseable statement or a forbidden one (the person can fix it there), else the modal closes
and the edit runs as a message of the clicker in the thread ("Working on it…", then the answer or the
approval card). Submitting twice runs twice: two answers, or two proposals decided on their own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import events
from adapters.text_table import cut
from core import Agent, Message, Reply, ReplyKind, editable_sql, render_error

log = structlog.get_logger(__name__)


class Poster(Protocol):
    """What the edit window needs of the app's poster (adapters.slack.app): the agent, a reply only the
    clicker sees, and a turn answered in the thread. A Protocol, so this module does not import the app."""

    agent: Agent

    async def tell(self, client: AsyncWebClient, reply: Reply, *, channel: str, user: str, thread_ts: str) -> None:
        ...

    async def converse(self, client: AsyncWebClient, message: Message, *, channel: str, thread_ts: str) -> None:
        ...

VIEW = "pgbot_edit_sql_view"  # the modal's callback_id
SQL_BLOCK = "pgbot_edit_sql"
SQL_INPUT = "pgbot_edit_sql_input"
MODAL_LIMIT = 3000  # plain_text_input's max_length (and initial_value's)
ERROR_LIMIT = 1000
TOO_LONG = "This answer's SQL is too long to edit here; use /sql with your edited statement."
TAMPERED = "This edit window cannot be used (it was changed, or opened by someone else). Click Edit SQL again."
NOT_HERE = "pgbot is not enabled in this channel, so this edit was not run."


@dataclass(frozen=True, slots=True)
class Place:
    """Where an edit window belongs: the answer, its thread, and who opened it."""

    answer_id: str
    team: str
    channel: str
    thread_ts: str
    user: str

    def to_dict(self) -> dict[str, str]:
        return {"a": self.answer_id, "w": self.team, "c": self.channel, "t": self.thread_ts, "u": self.user}


def signing_key(bot_token: str) -> bytes:
    """A key only pgbot's replicas can compute; never the token itself in an HMAC next to user data."""
    return hashlib.sha256(b"pgbot edit modal\x00" + bot_token.encode()).digest()


def _mac(key: bytes, data: Mapping[str, str]) -> str:
    return hmac.new(key, json.dumps(dict(data), sort_keys=True).encode(), hashlib.sha256).hexdigest()


def sign(place: Place, *, key: bytes) -> str:
    data = place.to_dict()
    return json.dumps({**data, "s": _mac(key, data)})


def verified(raw: object, *, key: bytes, user: str) -> Place | None:
    """The place in a submitted modal's metadata, or None when it is not what pgbot signed for ``user``."""
    try:
        data = json.loads(str(raw))
        fields = {k: str(data[k]) for k in ("a", "w", "c", "t", "u")}
        mac = str(data["s"])
    except (ValueError, KeyError, TypeError):
        return None
    if not hmac.compare_digest(mac, _mac(key, fields)) or fields["u"] != user:
        return None
    return Place(answer_id=fields["a"], team=fields["w"], channel=fields["c"], thread_ts=fields["t"], user=fields["u"])


def modal(sql: str, *, database: str, metadata: str) -> dict[str, Any]:
    """The Edit SQL modal: one multiline input holding ``sql`` (at most :data:`MODAL_LIMIT` characters)."""
    return {
        "type": "modal",
        "callback_id": VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Edit SQL"},
        "submit": {"type": "plain_text", "text": "Run"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input",
            "block_id": SQL_BLOCK,
            "label": {"type": "plain_text", "text": cut(f"SQL on {database}", 2000)},
            "element": {"type": "plain_text_input", "action_id": SQL_INPUT, "multiline": True,
                        "initial_value": sql, "max_length": MODAL_LIMIT},
            "hint": {"type": "plain_text", "text": (
                "Runs as your own database role. A read is answered in the thread; a change is proposed "
                "there for approval.")},
        }],
    }


def submitted_sql(body: Mapping[str, Any]) -> str:
    values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    value = ((values.get(SQL_BLOCK) or {}).get(SQL_INPUT) or {}).get("value")
    return value if isinstance(value, str) else ""


async def open_edit(poster: Poster, client: AsyncWebClient, body: Mapping[str, Any], *, key: bytes) -> None:
    """An Edit SQL click: the modal with the answer's statement, or why not, to the clicker alone."""
    action = body["actions"][0]
    user = str(body["user"]["id"])
    container = body.get("container") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
    msg = body.get("message") or {"ts": container.get("message_ts"), "thread_ts": container.get("thread_ts")}
    thread_ts = str(msg.get("thread_ts") or msg["ts"])
    place = Place(answer_id=str(action["value"]), team=events.team_of(body), channel=channel, thread_ts=thread_ts,
                  user=user)
    try:
        source = await poster.agent.edit_source(answer_id=place.answer_id, user=f"slack:{user}",
                                                thread_key=thread_key(place))
    except Exception as exc:  # noqa: BLE001 - the error policy: one reply (here: to the clicker), traceback logged
        await poster.tell(client, render_error(exc), channel=channel, user=user, thread_ts=thread_ts)
        return
    text = editable_sql(source.sql, max_chars=MODAL_LIMIT)
    if text is None:
        await poster.tell(client, Reply(kind=ReplyKind.INFO, text=TOO_LONG), channel=channel, user=user,
                           thread_ts=thread_ts)
        return
    place = Place(answer_id=source.answer_id, team=place.team, channel=channel, thread_ts=thread_ts, user=user)
    try:
        await client.views_open(trigger_id=str(body["trigger_id"]),
                                view=modal(text, database=source.database, metadata=sign(place, key=key)))
    except SlackApiError as exc:
        error = str(exc.response.get("error"))
        log.warning("slack_modal_not_opened", channel=channel, error=error)
        told = f"The edit window could not be opened (Slack said: {error}). Click Edit SQL again."
        await poster.tell(client, Reply(kind=ReplyKind.ERROR, text=told), channel=channel, user=user,
                           thread_ts=thread_ts)


async def on_submission(
    poster: Poster, ack: AsyncAck, body: Mapping[str, Any], client: AsyncWebClient, *, key: bytes,
    allowed: Mapping[str, Any],
) -> None:
    """A submitted modal: acknowledged at once (with the problem under the input, or closing it), then run."""
    user = str((body.get("user") or {}).get("id", ""))
    place = verified((body.get("view") or {}).get("private_metadata"), key=key, user=user)
    if place is None or place.team != events.team_of(body):
        log.warning("slack_edit_metadata_refused", user=user, team=events.team_of(body))
        await ack(response_action="errors", errors={SQL_BLOCK: TAMPERED})
        return
    if events.click_refusal({**body, "channel": {"id": place.channel}}, **allowed) is not None:
        log.warning("slack_edit_not_allowed", user=user, channel=place.channel)
        await ack(response_action="errors", errors={SQL_BLOCK: NOT_HERE})
        return
    sql = submitted_sql(body)
    problem = poster.agent.check_edit(sql, max_chars=MODAL_LIMIT)
    if problem is not None:
        await ack(response_action="errors", errors={SQL_BLOCK: cut(problem, ERROR_LIMIT)})
        return
    await ack()
    person = body.get("user") or {}
    message = Message(platform="slack", workspace=place.team, channel=place.channel, thread=place.thread_ts,
                      user=user, text=sql, user_name=str(person.get("name") or person.get("username") or ""),
                      edit_of=place.answer_id)
    await poster.converse(client, message, channel=place.channel, thread_ts=place.thread_ts)


def thread_key(place: Place) -> str:
    return Message(platform="slack", workspace=place.team, channel=place.channel, thread=place.thread_ts, user="",
                   text="").thread_key

"""Slack event payloads → :class:`core.Message`: which events pgbot answers, and the text it sees.

Rules: an ``app_mention`` anywhere starts (or continues) a conversation in its thread; a plain ``message``
in a thread pgbot has already answered in continues it without a mention. Bot messages and edits/deletes
(any ``subtype``) are ignored, and so is every channel outside ``allowed_channels`` and every person from a
workspace outside ``allowed_teams`` when those lists are set (:func:`refusal` says which, so the app can
tell someone who asked directly why pgbot stays silent).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from core import Message

PLATFORM = "slack"

# Slack wraps links and mentions as <target|label>; the text arrives with &, < and > escaped.
_LINK_RE = re.compile(r"<((?:https?|mailto|tel):[^>|]*)(?:\|([^>]*))?>")


class RecentKeys:
    """A bounded set of (channel, ts) pairs, newest kept: the threads pgbot answered in (replies there need
    no mention), and the messages it has seen (so a retried delivery is answered once).

    In memory on purpose: after a restart people mention the bot again, which is cheaper and more
    predictable than reading every thread's history back from Slack.
    """

    def __init__(self, *, max_keys: int = 10_000) -> None:
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._max = max_keys

    def add(self, channel: str, ts: str) -> None:
        key = (channel, ts)
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._max:
            self._keys.popitem(last=False)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._keys

    def first_time(self, channel: str, ts: str) -> bool:
        """Record (channel, ts); True only the first time it is seen."""
        if (channel, ts) in self._keys:
            return False
        self.add(channel, ts)
        return True


def thread_ts_of(event: Mapping[str, Any]) -> str:
    """The thread a reply belongs in: the event's thread, or a new thread under the message itself."""
    return str(event.get("thread_ts") or event["ts"])


def clean_text(text: str, *, bot_user_id: str | None) -> str:
    """Strip pgbot's own mention, unwrap Slack's link markup and undo its HTML escaping (SQL needs ``<``)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    else:
        text = re.sub(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>", " ", text)
    text = _LINK_RE.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.strip()


def _allowed(channel: str, allowed_channels: Sequence[str]) -> bool:
    return not allowed_channels or channel in allowed_channels


def teams_of(event: Mapping[str, Any], *, team_id: str) -> set[str]:
    """Every workspace involved: where the event happened and, in shared channels, the author's own."""
    teams = {team_id, str(event.get("team") or ""), str(event.get("user_team") or "")}
    return {t for t in teams if t}


def refusal(
    event: Mapping[str, Any], *, team_id: str, allowed_channels: Sequence[str], allowed_teams: Sequence[str]
) -> str | None:
    """Why config keeps pgbot out of this event ("team" or "channel"), or None when it may answer."""
    if allowed_teams and not teams_of(event, team_id=team_id) <= set(allowed_teams):
        return "team"
    if not _allowed(str(event.get("channel", "")), allowed_channels):
        return "channel"
    return None


# Subtypes that are still a person speaking; every other one (edits, deletes, joins, bots) is ignored.
_PERSON_SUBTYPES = frozenset({"thread_broadcast", "file_share"})


def from_person(event: Mapping[str, Any]) -> bool:
    """A person's new message (not a bot, not an edit, delete or join)."""
    subtype = event.get("subtype")
    return not event.get("bot_id") and (not subtype or subtype in _PERSON_SUBTYPES) and bool(event.get("user"))


def _message(event: Mapping[str, Any], *, team_id: str, bot_user_id: str | None) -> Message:
    return Message(
        platform=PLATFORM,
        workspace=team_id,
        channel=str(event["channel"]),
        thread=thread_ts_of(event),
        user=str(event["user"]),
        text=clean_text(str(event.get("text") or ""), bot_user_id=bot_user_id),
        user_name=str((event.get("user_profile") or {}).get("display_name") or ""),
        # A message's (channel, ts) names it for good: Slack's retries (X-Slack-Retry-Num) and the message +
        # app_mention pair it sends for one message share it, while their envelope event_ids may differ.
        event_id=f"{event['channel']}:{event['ts']}",
    )


def from_app_mention(
    event: Mapping[str, Any], *, team_id: str, bot_user_id: str | None, allowed_channels: Sequence[str],
    allowed_teams: Sequence[str] = (),
) -> Message | None:
    """An ``app_mention`` event, or None when pgbot should stay silent."""
    if not from_person(event) or refusal(event, team_id=team_id, allowed_channels=allowed_channels,
                                         allowed_teams=allowed_teams):
        return None
    return _message(event, team_id=team_id, bot_user_id=bot_user_id)


def from_message_event(
    event: Mapping[str, Any],
    *,
    team_id: str,
    bot_user_id: str | None,
    allowed_channels: Sequence[str],
    threads: RecentKeys,
    allowed_teams: Sequence[str] = (),
) -> Message | None:
    """A ``message`` event: a reply in a thread pgbot answered in, or a direct message; else None.

    In channels, messages that mention pgbot are left to the ``app_mention`` event Slack sends for the same
    message (and the app drops a second delivery of one message anyway).
    """
    if not from_person(event) or refusal(event, team_id=team_id, allowed_channels=allowed_channels,
                                         allowed_teams=allowed_teams):
        return None
    if is_direct(event):  # Slack sends no app_mention in DMs: every DM is for pgbot
        return _message(event, team_id=team_id, bot_user_id=bot_user_id)
    if bot_user_id and f"<@{bot_user_id}" in str(event.get("text") or ""):
        return None
    thread_ts = event.get("thread_ts")
    if not thread_ts or thread_ts == event.get("ts"):
        return None
    if (str(event["channel"]), str(thread_ts)) not in threads:
        return None
    return _message(event, team_id=team_id, bot_user_id=bot_user_id)


def is_direct(event: Mapping[str, Any]) -> bool:
    """A direct message to pgbot (Slack sends no app_mention there: every DM is addressed to pgbot)."""
    return event.get("channel_type") == "im"


def click_refusal(
    body: Mapping[str, Any], *, allowed_channels: Sequence[str], allowed_teams: Sequence[str]
) -> str | None:
    """Why config keeps pgbot from acting on a button click ("team" or "channel"), or None: the same lists as
    for messages, with the clicker's own workspace counted (a Slack Connect guest is from another team)."""
    user = body.get("user") or {}
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    event = {"channel": str(channel), "user_team": str(user.get("team_id") or "")}
    return refusal(event, team_id=team_of(body), allowed_channels=allowed_channels, allowed_teams=allowed_teams)


def team_of(body: Mapping[str, Any]) -> str:
    """The workspace id of an Events API or interactivity payload."""
    team = body.get("team_id") or (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    return str(team or "")

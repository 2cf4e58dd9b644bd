"""Slack payload → core.Message: which events are answered and the text core receives."""

from __future__ import annotations

from adapters.slack import events
from tests.adapters.slack.fake_slack import BOT_USER_ID, TEAM_ID, app_mention, thread_message


def test_app_mention_becomes_message_in_its_own_thread() -> None:
    event = app_mention(f"<@{BOT_USER_ID}> how many orders are &lt; 10 &amp; pending?", ts="1700000000.000100")
    message = events.from_app_mention(event, team_id=TEAM_ID, bot_user_id=BOT_USER_ID, allowed_channels=[])
    assert message is not None
    assert message.platform == "slack"
    assert (message.workspace, message.channel, message.thread, message.user) == (
        TEAM_ID, "C0CHAN0001", "1700000000.000100", "U0USER0001",
    )
    assert message.text == "how many orders are < 10 & pending?"
    assert message.identity == "slack:U0USER0001"


def test_mention_inside_a_thread_keeps_the_thread() -> None:
    event = app_mention(f"<@{BOT_USER_ID}> and per country?", ts="1700000005.000200", thread_ts="1700000000.000100")
    message = events.from_app_mention(event, team_id=TEAM_ID, bot_user_id=BOT_USER_ID, allowed_channels=[])
    assert message is not None and message.thread == "1700000000.000100"


def test_links_and_other_mentions_are_unwrapped_but_kept() -> None:
    text = f"<@{BOT_USER_ID}> ask <@U0OTHER001> about <http://example.com|example.com> and <mailto:a@b.c|a@b.c>"
    assert events.clean_text(text, bot_user_id=BOT_USER_ID) == "ask <@U0OTHER001> about example.com and a@b.c"
    assert events.clean_text("<@U0BOT00001>   /sql SELECT 1\nFROM t", bot_user_id=None) == "/sql SELECT 1\nFROM t"


def test_bots_and_subtypes_and_other_channels_are_ignored() -> None:
    mention = app_mention(f"<@{BOT_USER_ID}> hi", ts="1700000000.000100")
    assert events.from_app_mention({**mention, "bot_id": "B0OTHER"}, team_id=TEAM_ID, bot_user_id=BOT_USER_ID,
                                   allowed_channels=[]) is None
    assert events.from_app_mention(mention, team_id=TEAM_ID, bot_user_id=BOT_USER_ID,
                                   allowed_channels=["C0ELSEWHERE"]) is None
    assert events.from_app_mention(mention, team_id=TEAM_ID, bot_user_id=BOT_USER_ID,
                                   allowed_channels=["C0CHAN0001"]) is not None
    threads = events.RecentKeys()
    threads.add("C0CHAN0001", "1700000000.000100")
    reply = thread_message("and now?", ts="1700000010.000300", thread_ts="1700000000.000100")
    edited = {**reply, "subtype": "message_changed", "hidden": True}
    for event in (edited, {**reply, "bot_id": "B0OTHER", "subtype": "bot_message"}):
        assert events.from_message_event(event, team_id=TEAM_ID, bot_user_id=BOT_USER_ID, allowed_channels=[],
                                         threads=threads) is None
    broadcast = {**reply, "subtype": "thread_broadcast"}
    assert events.from_message_event(broadcast, team_id=TEAM_ID, bot_user_id=BOT_USER_ID, allowed_channels=[],
                                     threads=threads) is not None


def test_thread_replies_only_in_threads_the_bot_answered_and_without_mention() -> None:
    threads = events.RecentKeys(max_keys=2)
    reply = thread_message("and now?", ts="1700000010.000300", thread_ts="1700000000.000100")
    kwargs = {"team_id": TEAM_ID, "bot_user_id": BOT_USER_ID, "allowed_channels": [], "threads": threads}
    assert events.from_message_event(reply, **kwargs) is None  # type: ignore[arg-type]
    threads.add("C0CHAN0001", "1700000000.000100")
    message = events.from_message_event(reply, **kwargs)  # type: ignore[arg-type]
    assert message is not None and message.thread == "1700000000.000100" and message.text == "and now?"
    # The same text with a mention comes again as app_mention: the message event leaves it alone.
    mentioned = {**reply, "text": f"<@{BOT_USER_ID}> and now?"}
    assert events.from_message_event(mentioned, **kwargs) is None  # type: ignore[arg-type]
    # A top-level channel message is not a thread reply.
    top = {**reply, "thread_ts": None}
    assert events.from_message_event(top, **kwargs) is None  # type: ignore[arg-type]
    # The tracker is bounded: the oldest thread is forgotten.
    threads.add("C0CHAN0001", "1.1")
    threads.add("C0CHAN0001", "1.2")
    assert ("C0CHAN0001", "1700000000.000100") not in threads


def test_direct_messages_need_no_mention() -> None:
    event = {"type": "message", "channel": "D0DM000001", "user": "U0USER0001", "text": "/tables",
             "ts": "1700000000.000900", "event_ts": "1700000000.000900", "channel_type": "im"}
    message = events.from_message_event(event, team_id=TEAM_ID, bot_user_id=BOT_USER_ID, allowed_channels=[],
                                        threads=events.RecentKeys())
    assert message is not None and message.channel == "D0DM000001" and message.thread == "1700000000.000900"
    mentioned = {**event, "text": f"<@{BOT_USER_ID}> /tables"}
    message = events.from_message_event(mentioned, team_id=TEAM_ID, bot_user_id=BOT_USER_ID, allowed_channels=[],
                                        threads=events.RecentKeys())
    assert message is not None and message.text == "/tables"


def test_refusal_names_the_setting_that_keeps_pgbot_out() -> None:
    event = app_mention(f"<@{BOT_USER_ID}> hi", ts="1700000000.000100")
    open_ = {"allowed_channels": [], "allowed_teams": []}
    assert events.refusal(event, team_id=TEAM_ID, **open_) is None  # type: ignore[arg-type]
    assert events.refusal(event, team_id=TEAM_ID, allowed_channels=["C0OTHER"], allowed_teams=[]) == "channel"
    assert events.refusal(event, team_id=TEAM_ID, allowed_channels=[], allowed_teams=["T0OTHER"]) == "team"
    assert events.refusal(event, team_id=TEAM_ID, allowed_channels=["C0CHAN0001"], allowed_teams=[TEAM_ID]) is None
    # Slack Connect: the channel is ours, the author's workspace is not.
    guest = {**event, "user_team": "T0GUEST"}
    assert events.refusal(guest, team_id=TEAM_ID, allowed_channels=[], allowed_teams=[TEAM_ID]) == "team"
    assert events.from_app_mention(guest, team_id=TEAM_ID, bot_user_id=BOT_USER_ID, allowed_channels=[],
                                   allowed_teams=[TEAM_ID]) is None

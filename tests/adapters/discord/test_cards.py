"""Issue 17 in Discord, as a person sees it: approval cards in each state, the working line with its phase and
Cancel (only the asker's stops the query on the server), and a long turn's notice. discord.py's real client
against the local fake Discord; the real Agent on the real Postgres where the flow matters."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from adapters.discord import cards, turn_views
from adapters.discord.render import render
from core import Agent, Message, Reply, ReplyKind
from core.card_state import CardState, CardStatus
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import (
    APPROVER_ID,
    BOT_ID,
    BOT_USER,
    USER_ID,
    FakeDiscord,
    message_create,
    user,
)
from tests.adapters.discord.test_bot import custom_ids, mention
from tests.adapters.slack.agent_double import ApprovalAgentDouble, approval_reply
from tests.integration.test_shutdown import wait_active

NOW = 1_790_000_000.0
DBA = f"discord:{APPROVER_ID}"


def test_a_card_in_each_state_as_a_person_reads_it() -> None:
    reply = approval_reply()
    assert reply.approval is not None
    pending = render(reply)
    assert pending.content.startswith(f"🔒 Waiting for approval · expires <t:{int(reply.approval.expires_at)}:t>")
    assert pending.embeds[0].title == "Approve: UPDATE 1 row in orders?"
    cases = {
        CardState(CardStatus.RUNNING, by=DBA, at=NOW): f"⏳ Approved by <@{APPROVER_ID}> — running",
        CardState(CardStatus.RUNNING, by=DBA, detail="Dumped 3 of 12 tables; now public.orders."):
            f"⏳ Approved by <@{APPROVER_ID}> — running: Dumped 3 of 12 tables; now public.orders.",
        CardState(CardStatus.APPLIED, by=DBA, at=NOW, detail="UPDATE 3", duration_ms=12):
            f"✅ Applied: UPDATE 3 in 12 ms — approved by <@{APPROVER_ID}>",
        CardState(CardStatus.REJECTED, by=f"discord:{USER_ID}", at=NOW): f"🚫 Rejected by <@{USER_ID}>",
        CardState(CardStatus.FAILED, by=DBA, at=NOW, detail="canceling statement due to statement timeout"):
            f"❌ Failed: canceling statement due to statement timeout (nothing changed) — approved by <@{APPROVER_ID}>",
        CardState(CardStatus.EXPIRED, at=NOW): f"⌛ Expired <t:{int(NOW)}:t>",
        CardState(CardStatus.APPLIED, by="slack:U0OTHER", detail="DELETE 1", duration_ms=1500):
            "✅ Applied: DELETE 1 in 1.5 s — approved by slack:U0OTHER",  # another platform's person, as text
    }
    for state, line in cases.items():
        assert cards.state_content(state) == line
    assert cards.state_content(CardState(CardStatus.RUNNING, by=DBA, detail="x"), elapsed_s=61).endswith(" · 1 min 1 s")


def test_approver_roles_are_mentioned_as_roles_and_only_they_may_be_pinged() -> None:
    from core.card_state import Approvers

    prompt = approval_reply().approval
    assert prompt is not None
    prompt = type(prompt)(**{**{f: getattr(prompt, f) for f in prompt.__dataclass_fields__},
                             "approvers": Approvers(people=("discord-role:77", "discord:5"), roles=("dba",),
                                                    role_holders=("discord:6",))})
    shown = render(Reply(kind=ReplyKind.APPROVAL, text="(model text)", approval=prompt, database="shop"))
    assert shown.content.endswith("**May approve:** <@&77>, <@5> or anyone with database role dba (<@6>)")
    assert shown.mentions is not None and not shown.mentions.everyone
    assert sorted(o.id for o in shown.mentions.users) == [5, 6]  # type: ignore[union-attr]
    assert [o.id for o in shown.mentions.roles] == [77]  # type: ignore[union-attr]
    # Model text naming a person is shown as written and pings nobody.
    answer = render(Reply(kind=ReplyKind.ANSWER, text="discord:5 did it <@5> @everyone", answer_id="a"))
    assert answer.content == "discord:5 did it <@5> @everyone" and answer.mentions is None


class SlowDouble(ApprovalAgentDouble):
    """TEST DOUBLE: an answer that takes longer than the (shortened) notice threshold."""

    async def handle(self, message: Message) -> AsyncIterator[Reply]:
        import adapters.discord.bot as bot

        yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
        # The turn's length is what is under test, so this sleep stays: the adapter's clock starts before
        # handle(), so it measures at least this long (a loaded machine only adds); the test then waits for
        # the answer itself.
        await asyncio.sleep(bot.NOTIFY_AFTER_S + 0.2)
        yield Reply(kind=ReplyKind.ANSWER, text="There are 300 items.", answer_id="a1")


async def test_a_long_turn_ends_with_a_new_message_that_pings_the_asker(
    fake_discord: FakeDiscord, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adapters.discord.bot as bot

    monkeypatch.setattr(bot, "NOTIFY_AFTER_S", 0.3)  # production: 10 s
    client = await make_client(SlowDouble())
    data = message_create(f"<@{BOT_ID}> count the items", mentions=[BOT_USER])
    client._connection.parse_message_create(data)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "channels", data["id"], "messages")) == 2)
    working, answer = fake_discord.of("POST", "channels", data["id"], "messages")
    assert fake_discord.of("DELETE", "channels", data["id"], "messages", working.response["id"])
    assert re.match(rf"<@{USER_ID}> here is your answer \(it took \d s\)\.\nThere are 300 items\.",
                    answer.json["content"])
    assert answer.json["allowed_mentions"]["users"] == [int(USER_ID)]  # exactly the asker is pinged


async def test_cancel_on_the_working_message_stops_the_query_and_only_for_the_asker(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent, fresh_db: str
) -> None:
    client = await make_client(shop_agent)
    client.progress_every_s = 0.2
    marker = "pgbot_discord_cancel"
    data = message_create(f"<@{BOT_ID}> /sql SELECT pg_sleep(30) AS {marker}", mentions=[BOT_USER])
    client._connection.parse_message_create(data)
    await fake_discord.wait_for(lambda f: any("running the query on shop" in (c.json or {}).get("content", "")
                                              for c in f.of("PATCH", "channels")))
    working = fake_discord.of("POST", "channels", data["id"], "messages")[0]
    (cancel_id,) = custom_ids(working.json)
    assert cancel_id.startswith("pgbot:cancel:") and working.json["content"] == "⏳ Working on it…"
    await wait_active(fresh_db, marker, present=True)
    thread = fake_discord.of("POST", "channels", "1200000000000000002", "messages", data["id"], "threads")[0].response
    shown = fake_discord.messages[working.response["id"]]

    eve = fake_discord.click(cancel_id, message=shown, thread=thread, clicker=user("1200000000000000555", "eve"))
    client._connection.parse_interaction_create(eve)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "interactions", eve["id"])) == 1)
    refusal = fake_discord.of("POST", "interactions", eve["id"])[0].json
    assert refusal["type"] == 4 and refusal["data"]["flags"] == 64  # ephemeral: only eve sees it
    assert f"Only <@{USER_ID}>, who asked, can cancel" in refusal["data"]["content"]
    await wait_active(fresh_db, marker, present=True)

    asker = fake_discord.click(cancel_id, message=shown, thread=thread, clicker=user(USER_ID, "alice"))
    client._connection.parse_interaction_create(asker)
    await fake_discord.wait_for(lambda f: any("you cancelled this request" in (c.json or {}).get("content", "")
                                              for c in f.of("PATCH", "channels")))
    await wait_active(fresh_db, marker, present=False, within_s=5)  # cancelled on the server
    assert turn_views.working_content(Reply(kind=ReplyKind.WORKING, text="Working on it…"), phase="asking the model",
                                      elapsed_s=12) == "⏳ Working on it… asking the model (12 s)"


async def test_a_non_approvers_click_is_visible_only_to_them(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data, thread, post, edit = await mention(fake_discord, client, "/sql DELETE FROM items WHERE id = 4")
    approve_id, _ = custom_ids(edit.json)
    click = fake_discord.click(approve_id, message=fake_discord.messages[post.response["id"]],
                               thread=thread.response, clicker=user("1200000000000000555", "eve"))
    client._connection.parse_interaction_create(click)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks", BOT_ID, click["token"])) == 1)
    told = fake_discord.of("POST", "webhooks", BOT_ID, click["token"])[0].json
    assert told["flags"] == 64 and "You (<@1200000000000000555>) cannot approve" in told["content"]
    await fake_discord.handled()
    patches = fake_discord.of("PATCH", "channels", data["id"], "messages", post.response["id"])
    assert len(patches) == 1  # only the answer that made the card: the card is untouched

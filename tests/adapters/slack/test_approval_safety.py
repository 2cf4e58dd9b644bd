"""Issue 13, as an attacker in Slack would try it: signed payloads into bolt's real AsyncApp, the real Agent on
the real Postgres, every Web API call checked on the local fake Slack.

Self-approval, approving where no approvers are configured (the old shipped default), posing as the terminal,
a dangerous statement hidden past the card's cut, a click from another workspace, a disguised link from the
model, and a password on the card (thread history: tests/scenarios/test_secret_masking.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from adapters.slack.app import build_slack_app
from bot.wiring import build_agent
from core import Agent, Settings
from tests import llm_server as llm
from tests.adapters.slack.conftest import APPROVER
from tests.adapters.slack.fake_slack import FakeSlack, block_actions, dispatch, slack_settings
from tests.adapters.slack.test_app import FORM, ask, bot_message, buttons, texts
from tests.helpers import ITEMS_SQL
from tests.llm_server import ScriptedLlmServer

OTHER_TEAM = "T0EVILCORP"

# A DO block whose harmless first 4,000 characters fill the card; the DELETE comes after Slack's cut.
PADDING = "\n".join(f"  PERFORM {i}; -- harmless bookkeeping step {i}" for i in range(120))
LONG_DO = f"DO $$\nBEGIN\n{PADDING}\n  DELETE FROM items;\nEND\n$$"


async def count_items(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM items"))
    finally:
        await conn.close()


async def click(fake: FakeSlack, app: Any, post: Any, update: Any, *, user: str, team: str | None = None,
                action: str = "pgbot_approve") -> None:
    (_, action_id), _ = buttons(update.args["blocks"])
    body = block_actions(action_id=action, value=action_id, message=bot_message(post, update), user=user)
    if team is not None:
        body = body.replace("T0TEAM0001", team)  # the clicker's workspace (and the payload's team)
    assert (await dispatch(app, body, content_type=FORM)).status == 200


async def last_refusal(fake: FakeSlack, before: int, *, user: str) -> str:
    """A refused click is told to the clicker alone (ephemeral), never posted to the thread."""
    await fake.wait_for(lambda f: len(f.of("chat.postEphemeral")) > before)
    refusal = fake.of("chat.postEphemeral")[-1].args
    assert refusal["user"] == user
    return str(refusal["text"])


@pytest.fixture
async def open_agent(fresh_db: str) -> AsyncIterator[Agent]:
    """What the shipped configs used to be: no roles table, no approvers."""
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}), use_llm=False)
    yield agent
    await agent.aclose()


async def test_an_approver_cannot_approve_their_own_change(
    fake_slack: FakeSlack, shop_agent: Agent, fresh_db: str
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    mine = await ask_as(fake_slack, app, "/sql DELETE FROM items WHERE id < 100", user=APPROVER)
    posts = len(fake_slack.of("chat.postMessage"))
    await click(fake_slack, app, *mine, user=APPROVER)
    refusal = await last_refusal(fake_slack, 0, user=APPROVER)
    assert "self-approval is off" in refusal and "Nothing was run" in refusal
    assert f"You (<@{APPROVER}>)" in refusal  # named by mention, not by id
    assert await count_items(fresh_db) == 300
    await fake_slack.handled()
    assert len(fake_slack.of("chat.postMessage")) == posts


async def ask_as(fake: FakeSlack, app: Any, text: str, *, user: str) -> tuple[Any, Any]:
    """Like ``ask``, with the mention sent by ``user``."""
    from tests.adapters.slack.fake_slack import BOT_USER_ID, app_mention, event_body, new_ts

    updates = len(fake.of("chat.update"))
    event = app_mention(f"<@{BOT_USER_ID}> {text}", ts=new_ts(), user=user)
    assert (await dispatch(app, event_body(event))).status == 200
    await fake.wait_for(lambda f: len(f.of("chat.update")) > updates)
    return fake.of("chat.postMessage")[-1], fake.of("chat.update")[-1]


async def test_with_no_approvers_nobody_approves_from_chat_and_the_card_says_how_to_fix_it(
    fake_slack: FakeSlack, open_agent: Agent, fresh_db: str
) -> None:
    app = build_slack_app(open_agent, slack_settings(fake_slack))
    post, update = await ask(fake_slack, app, "/sql DO $$ BEGIN DELETE FROM items; END $$")
    shown = "\n".join(texts(update.args["blocks"]))
    assert "no approvers are configured for 'shop'" in shown
    assert "[databases.shop.approvers]" in shown and "roles = " in shown and "users = " in shown
    # The requester, a stranger, and someone posing as the terminal's operator: all refused, nothing runs.
    assert "*May approve:* nobody yet (no approvers are configured)" in shown
    for user in ("U0USER0001", "U0STRANGER", "terminal:root"):
        before = len(fake_slack.of("chat.postEphemeral"))
        await click(fake_slack, app, post, update, user=user)
        refusal = await last_refusal(fake_slack, before, user=user)
        assert "no approvers are configured" in refusal, refusal
    assert len(fake_slack.of("chat.postMessage")) == 1  # nothing in the thread but the card
    assert await count_items(fresh_db) == 300
    await fake_slack.handled()
    assert len(fake_slack.of("chat.update")) == 1  # the buttons stay: nothing was decided


async def test_a_statement_longer_than_the_card_is_attached_whole(
    fake_slack: FakeSlack, shop_agent: Agent, fresh_db: str
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    assert len(LONG_DO) > 4000 and LONG_DO.index("DELETE FROM items") > 3000
    post, update = await ask(fake_slack, app, f"/sql {LONG_DO}")
    shown = texts(update.args["blocks"])
    code = next(t for t in shown if t.startswith("```"))
    assert "DELETE FROM items" not in code and code.endswith("…\n```")  # the card itself is cut…
    lines = LONG_DO.count("\n") + 1
    assert any(f"Full statement ({lines} lines) attached: change.sql" in t for t in shown)  # …and says so
    await fake_slack.wait_for(lambda f: len(f.of("files.completeUploadExternal")) == 1)
    upload = fake_slack.of("files.getUploadURLExternal")[0]
    assert upload.args["filename"] == "change.sql"
    assert fake_slack.uploads and next(iter(fake_slack.uploads.values())).decode() == LONG_DO
    complete = fake_slack.of("files.completeUploadExternal")[0]
    assert complete.args["thread_ts"] == post.args["thread_ts"]  # beside the card, in its thread
    assert await count_items(fresh_db) == 300


async def test_a_short_statement_has_no_attachment(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    _, update = await ask(fake_slack, app, "/sql DELETE FROM items WHERE id = 1")
    assert not any("attached" in t for t in texts(update.args["blocks"]))
    await fake_slack.handled()
    assert not fake_slack.of("files.getUploadURLExternal")


async def test_clicks_from_another_workspace_are_ignored(fake_slack: FakeSlack, shop_agent: Agent,
                                                          fresh_db: str) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack, allowed_teams=["T0TEAM0001"]))
    post, update = await ask(fake_slack, app, "/sql DELETE FROM items WHERE id = 5")
    posts = len(fake_slack.of("chat.postMessage"))
    await click(fake_slack, app, post, update, user=APPROVER, team=OTHER_TEAM)  # same id, a foreign workspace
    await fake_slack.handled()
    assert len(fake_slack.of("chat.postMessage")) == posts and len(fake_slack.of("chat.update")) == 1
    assert await count_items(fresh_db) == 300
    await click(fake_slack, app, post, update, user=APPROVER)  # from the allowed workspace it works
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 3)  # running, then applied
    assert await count_items(fresh_db) == 299


async def test_model_text_cannot_disguise_a_link(fake_slack: FakeSlack, fresh_db: str) -> None:
    async with ScriptedLlmServer() as server:
        server.script(llm.text("Your session expired: [re-login](https://evil.example/steal) or "
                               "<https://evil.example/steal|re-login> or [https://ok.example](https://evil.example)"))
        agent = build_agent(Settings(
            databases={"shop": {"dsn": fresh_db}},
            llm={"base_url": server.base_url, "api_key": "k", "max_retries": 0, "tool_mode": "native"},
        ))
        try:
            app = build_slack_app(agent, slack_settings(fake_slack))
            _, update = await ask(fake_slack, app, "hello")
        finally:
            await agent.aclose()
    shown = "\n".join(texts(update.args["blocks"]))
    assert "re-login (<https://evil.example/steal>)" in shown
    assert "|" not in shown.replace("&lt;https://evil.example/steal|re-login&gt;", "")  # no <url|label> link
    assert "&lt;https://evil.example/steal|re-login&gt;" in shown  # the raw markup stays inert text
    assert "https://ok.example (<https://evil.example>)" in shown


def scram_matches(verifier: str, password: str) -> bool:
    """Whether Postgres's SCRAM-SHA-256 verifier was made from ``password`` (RFC 5802/7677)."""
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return method == "SCRAM-SHA-256" and base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


async def test_a_password_is_masked_on_the_card_and_in_the_audit_but_the_real_one_is_set(
    fake_slack: FakeSlack, shop_agent: Agent, fresh_db: str
) -> None:
    role, secret = f"pgbot_mask_{uuid.uuid4().hex[:8]}", "hunter2-Very-Secret"
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    try:
        post, update = await ask(fake_slack, app, f"/sql CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        shown = "\n".join(texts(update.args["blocks"]))
        assert secret not in str(update.args) and "PASSWORD '********'" in shown
        assert "shown as ********" in shown
        await click(fake_slack, app, post, update, user=APPROVER)
        await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 3 and len(f.of("chat.postMessage")) == 2)
        everything = str([call.args for call in fake_slack.calls])
        assert secret not in everything  # not on the card, the outcome, or the retired card
        conn = await asyncpg.connect(fresh_db)
        try:
            verifier = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
            audited = await conn.fetch("SELECT sql FROM pgbot.audit")
        finally:
            await conn.close()
        assert scram_matches(verifier, secret)  # what ran had the real password
        assert audited and all(secret not in row["sql"] for row in audited)
    finally:
        conn = await asyncpg.connect(fresh_db)
        try:
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await conn.close()

"""Edit SQL over Discord: the button click and the modal submission are real INTERACTION_CREATE payloads fed
to discord.py's own dispatch (DynamicItem, then the Modal it opened), answered over the fake REST API; the
real Agent runs on real Postgres and Redis with the scripted model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from adapters.discord import edit
from bot.wiring import build_agent
from core import Agent
from tests import llm_server as llm
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import (
    USER_ID,
    FakeDiscord,
    RestCall,
    result_text,
    text_inputs,
    thread_channel,
    user,
)
from tests.adapters.discord.test_bot import custom_ids, mention
from tests.helpers import settings_for
from tests.llm_server import ScriptedLlmServer
from tests.services import throwaway_role

ASKER = user(USER_ID, "alice")
OTHER = user("1200000000000000777", "olga")
STRANGER = user("1200000000000000555", "eve")
QUERY = "SELECT id, current_user AS who FROM t WHERE id <= 3 ORDER BY id"
EDITED = "SELECT id, current_user AS who FROM t WHERE id BETWEEN 4 AND 5 ORDER BY id"
GRANT = "GRANT SELECT, UPDATE ON t TO {role}"
EPHEMERAL = 64
MODAL, DEFERRED = 9, 5


@pytest.fixture
async def roles(fresh_db: str, pg_admin_dsn: str) -> AsyncIterator[tuple[str, str]]:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g")
    finally:
        await conn.close()
    async with throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_asker", grants=GRANT) as asker, \
            throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_other", grants=GRANT) as other:
        yield asker, other


@pytest.fixture
async def agent(fresh_db: str, roles: tuple[str, str], llm_server: ScriptedLlmServer, redis_url: str
                ) -> AsyncIterator[Agent]:
    asker, other = roles
    settings = settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url,
                            roles={f"discord:{USER_ID}": asker, f"discord:{OTHER['id']}": other},
                            approvers={"users": [f"discord:{USER_ID}"]})
    settings = settings.model_copy(update={"accuracy": settings.accuracy.model_copy(
        update={"grounded_answers": False})})
    built = build_agent(settings)
    yield built
    await built.aclose()


class Conversation:
    """One answered question in a thread, and the clicks and submissions on it."""

    def __init__(self, fake: FakeDiscord, client: Any, thread: dict[str, Any], shown: dict[str, Any],
                 buttons: list[str]) -> None:
        self.fake, self.client, self.thread, self.shown, self.buttons = fake, client, thread, shown, buttons

    @property
    def edit_id(self) -> str:
        return next(b for b in self.buttons if b.startswith("pgbot:edit:"))

    async def click(self, clicker: dict[str, Any], custom_id: str | None = None) -> RestCall:
        """Click Edit SQL; return the interaction's response (the modal, or a private note)."""
        count = len(self.fake.of("POST", "interactions"))
        payload = self.fake.click(custom_id or self.edit_id, message=self.shown, thread=self.thread, clicker=clicker)
        self.client._connection.parse_interaction_create(payload)
        await self.fake.wait_for(lambda f: len(f.of("POST", "interactions")) > count)
        return self.fake.of("POST", "interactions")[-1]

    async def submit(self, modal: dict[str, Any], sql: str, submitter: dict[str, Any]) -> RestCall:
        """Submit the modal; return the interaction's response (a deferred message, or a private note)."""
        count = len(self.fake.of("POST", "interactions"))
        (field,) = text_inputs(modal)
        payload = self.fake.submit_modal(modal, {field["custom_id"]: sql}, message=self.shown, thread=self.thread,
                                         submitter=submitter)
        self.client._connection.parse_interaction_create(payload)
        await self.fake.wait_for(lambda f: len(f.of("POST", "interactions")) > count)
        return self.fake.of("POST", "interactions")[-1]

    def edits(self) -> int:
        return len(self.fake.of("PATCH", "webhooks"))

    async def answered(self, since: int) -> RestCall:
        """The deferred response edited into core's reply (the first edit after ``since`` edits)."""
        await self.fake.wait_for(lambda f: len(f.of("PATCH", "webhooks")) > since)
        return self.fake.of("PATCH", "webhooks")[since]


async def conversation(fake: FakeDiscord, make_client: ClientFactory, agent: Agent, llm_server: ScriptedLlmServer,
                       sql: str = QUERY) -> Conversation:
    client = await make_client(agent)
    llm_server.script(llm.tool_call("run_query", {"sql": sql}), llm.text("Here are the ids."))
    _, thread, post, answer = await mention(fake, client, "list the first ids")
    return Conversation(fake, client, thread.response, fake.messages[post.response["id"]], custom_ids(answer.json))


async def test_edit_opens_a_modal_and_its_submission_answers_in_the_thread_as_the_editor(
    fake_discord: FakeDiscord, make_client: ClientFactory, agent: Agent, llm_server: ScriptedLlmServer,
    roles: tuple[str, str],
) -> None:
    _, other_role = roles
    talk = await conversation(fake_discord, make_client, agent, llm_server)
    original_id = talk.edit_id.removeprefix("pgbot:edit:")

    opened = await talk.click(OTHER)
    assert opened.json["type"] == MODAL
    modal = opened.json["data"]
    (field,) = text_inputs(modal)
    assert modal["title"] == "Edit SQL" and field["style"] == 2 and field["max_length"] == 4000
    assert field["value"] == "SELECT id\n     , CURRENT_USER AS who\nFROM t\nWHERE id <= 3\nORDER BY id"

    since = talk.edits()
    response = await talk.submit(modal, EDITED, OTHER)
    assert response.json["type"] == DEFERRED and not response.json.get("data", {}).get("flags", 0) & EPHEMERAL
    answer = await talk.answered(since)
    assert f"Edited SQL of answer {original_id} by Olga, run again: 2 rows." in answer.json["content"]
    shown = result_text(answer.json)
    assert "4 | " + other_role in shown and "5 | " + other_role in shown  # the editor's role, not the asker's
    ids = custom_ids(answer.json)
    assert f"pgbot:edit:{original_id}" not in ids and any(i.startswith("pgbot:edit:") for i in ids)

    # An edit into a change: the editor's proposal, with Approve / Reject in the thread.
    opened = await talk.click(OTHER)
    since = talk.edits()
    await talk.submit(opened.json["data"], "UPDATE t SET id = id + 100 WHERE id = 1", OTHER)
    card = await talk.answered(since)
    assert [i.split(":")[1] for i in custom_ids(card.json)] == ["approve", "reject"]
    assert other_role in json.dumps(card.json["embeds"])


@pytest.mark.parametrize(("sql", "says"), [
    ("SELECT 1; SELECT 2", "2 statements"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("   ", "The SQL is empty"),
    ("SELECT " + "1, " * 1500 + "1", "at most 4,000"),
])
async def test_bad_text_is_told_to_the_submitter_alone_and_runs_nothing(
    fake_discord: FakeDiscord, make_client: ClientFactory, agent: Agent, llm_server: ScriptedLlmServer,
    sql: str, says: str,
) -> None:
    talk = await conversation(fake_discord, make_client, agent, llm_server)
    opened = await talk.click(ASKER)
    response = await talk.submit(opened.json["data"], sql, ASKER)
    data = response.json["data"]
    assert response.json["type"] == 4 and data["flags"] & EPHEMERAL and says in data["content"]
    assert "Nothing ran." in data["content"]
    if sql.strip():
        (shown,) = data["embeds"]  # their SQL, to copy
        assert shown["title"] == "SQL" and shown["description"].startswith("```sql\nSELECT ")
    await fake_discord.handled()
    assert not fake_discord.of("PATCH", "webhooks")


async def test_foreign_submissions_strangers_and_moved_buttons_are_refused(
    fake_discord: FakeDiscord, make_client: ClientFactory, agent: Agent, llm_server: ScriptedLlmServer,
) -> None:
    talk = await conversation(fake_discord, make_client, agent, llm_server)
    opened = await talk.click(OTHER)

    # Another user submitting the window OTHER opened (a replayed payload): refused, privately.
    response = await talk.submit(opened.json["data"], EDITED, ASKER)
    assert response.json["data"]["flags"] & EPHEMERAL and edit.NOT_YOURS in response.json["data"]["content"]

    # No mapped role: no modal, a private note.
    response = await talk.click(STRANGER)
    assert response.json["type"] == 4 and "not mapped" in response.json["data"]["content"]

    # The button of this answer clicked from another thread: refused before any modal.
    moved = Conversation(fake_discord, talk.client, thread_channel(thread_id="1200000000000000099", name="x"),
                         talk.shown, talk.buttons)
    response = await moved.click(ASKER)
    assert response.json["type"] == 4 and "belongs to another conversation" in response.json["data"]["content"]
    # A forged id for an answer pgbot never gave (on a copied message): forgotten.
    forged = json.loads(json.dumps(talk.shown).replace(talk.edit_id, "pgbot:edit:0123456789ab"))
    response = await Conversation(fake_discord, talk.client, talk.thread, forged, talk.buttons).click(
        ASKER, "pgbot:edit:0123456789ab")
    assert "no longer remembers" in response.json["data"]["content"]
    await fake_discord.handled()
    assert not fake_discord.of("PATCH", "webhooks")


async def test_sql_too_long_for_a_modal_gets_a_disabled_button_saying_so(
    fake_discord: FakeDiscord, make_client: ClientFactory, agent: Agent, llm_server: ScriptedLlmServer,
) -> None:
    long_sql = "SELECT id FROM t WHERE id IN (" + ", ".join(str(n) for n in range(1, 1100)) + ") ORDER BY id"
    assert len(long_sql) > 4000
    talk = await conversation(fake_discord, make_client, agent, llm_server, sql=long_sql)
    assert not any(b.startswith("pgbot:edit:") for b in talk.buttons)
    rows = [c for row in talk.shown["components"] for c in row["components"]]
    (note,) = [c for c in rows if c["custom_id"].startswith("pgbot:edit-too-long:")]
    assert note["disabled"] is True and note["label"] == edit.TOO_LONG_LABEL

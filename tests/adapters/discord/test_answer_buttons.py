"""Show SQL and Export all rows, clicked through discord.py's real interaction handling on the fake Discord,
with the real agent, the scripted model over HTTP and a real Postgres where the asker and the clicker map to
different roles."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bot.wiring import build_agent
from core import Agent, Settings
from tests import llm_server as llm
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import USER_ID, FakeDiscord, RestCall, result_text, thread_channel, user
from tests.adapters.discord.test_bot import custom_ids, mention
from tests.llm_server import ScriptedLlmServer
from tests.services import throwaway_role

OTHER = user("1200000000000000777", "olga")
STRANGER = user("1200000000000000555", "eve")
ASKER = user(USER_ID, "alice")
QUERY = "SELECT id, current_user AS who FROM t ORDER BY id"
GRANT = "GRANT SELECT ON t TO {role}"
EPHEMERAL = 64


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
async def agent(fresh_db: str, roles: tuple[str, str], llm_server: ScriptedLlmServer, tmp_path: Path
                ) -> AsyncIterator[Agent]:
    asker, other = roles
    agent = build_agent(Settings(
        databases={"shop": {"dsn": fresh_db, "max_rows": 10,
                            "roles": {f"discord:{USER_ID}": asker, f"discord:{OTHER['id']}": other}}},
        llm={"base_url": llm_server.base_url, "api_key": "k", "max_retries": 0, "tool_mode": "native"},
        limits={"export_dir": str(tmp_path)},
    ))
    yield agent
    await agent.aclose()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


async def test_show_sql_and_export_as_the_clicker(
    fake_discord: FakeDiscord, make_client: ClientFactory, agent: Agent, llm_server: ScriptedLlmServer,
    roles: tuple[str, str], tmp_path: Path,
) -> None:
    asker_role, other_role = roles
    client = await make_client(agent)
    llm_server.script(llm.tool_call("run_query", {"sql": QUERY}), llm.text("Here are the ids."))
    _, thread, post, edit = await mention(fake_discord, client, "list every id")
    sql_id, export_id, _up, _down, edit_id = custom_ids(edit.json)
    assert edit_id.startswith("pgbot:edit:")
    assert sql_id.startswith("pgbot:sql:") and export_id.startswith("pgbot:export:")
    assert "showing 10 of 10+" in result_text(edit.json) and "SELECT" not in json.dumps(edit.json["embeds"])
    shown = fake_discord.messages[post.response["id"]]

    async def click(custom_id: str, clicker: dict[str, str], count: int) -> RestCall:
        payload = fake_discord.click(custom_id, message=shown, thread=thread.response, clicker=clicker)
        client._connection.parse_interaction_create(payload)
        await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == count)
        return fake_discord.of("POST", "webhooks")[-1]

    # Show SQL: laid out by pglast, for the clicker alone.
    note = await click(sql_id, OTHER, 1)
    assert note.json["flags"] & EPHEMERAL
    assert note.json["embeds"][0]["description"] == (
        "```sql\nSELECT id\n     , CURRENT_USER AS who\nFROM t\nORDER BY id;\n```")

    # Someone else exports: their own role, and only they see the file.
    sent = await click(export_id, OTHER, 2)
    assert sent.json["flags"] & EPHEMERAL
    (name, data), = sent.files.items()
    rows = csv_rows(data)
    assert name.endswith(".csv") and rows[0] == ["id", "who"] and len(rows) == 51
    assert {r[1] for r in rows[1:]} == {other_role}
    assert f"as role {other_role}" in sent.json["content"] and str(tmp_path) not in json.dumps(sent.json)

    # The asker exports: their role, posted in the thread for everyone there.
    sent = await click(export_id, ASKER, 3)
    assert not sent.json.get("flags", 0) & EPHEMERAL
    assert {r[1] for r in csv_rows(next(iter(sent.files.values())))[1:]} == {asker_role}

    # No role on the database: refused privately, nothing runs.
    sent = await click(export_id, STRANGER, 4)
    assert sent.json["flags"] & EPHEMERAL and "not mapped" in sent.json["content"]
    assert not sent.files
    assert len(list(tmp_path.iterdir())) == 2  # noqa: ASYNC240 - a test reading its own tmp folder


async def test_a_plain_english_export_is_attached_not_a_path(
    fake_discord: FakeDiscord, make_client: ClientFactory, agent: Agent, llm_server: ScriptedLlmServer,
    tmp_path: Path,
) -> None:
    client = await make_client(agent)
    llm_server.script(llm.tool_call("export_csv", {"sql": "SELECT id FROM t"}), llm.text("Your file is attached."))
    _, _, _, edit = await mention(fake_discord, client, "export all ids")
    (name, data), = edit.files.items()
    assert name.endswith(".csv") and len(csv_rows(data)) == 51
    assert str(tmp_path) not in json.dumps(edit.json)


async def test_a_button_shown_in_another_thread_is_refused(
    fake_discord: FakeDiscord, make_client: ClientFactory, agent: Agent, llm_server: ScriptedLlmServer,
) -> None:
    client = await make_client(agent)
    llm_server.script(llm.tool_call("run_query", {"sql": QUERY}), llm.text("Here are the ids."))
    _, _, post, edit = await mention(fake_discord, client, "list every id")
    elsewhere = thread_channel(thread_id="1200000000000000099", name="other")
    payload = fake_discord.click(custom_ids(edit.json)[1], message=fake_discord.messages[post.response["id"]],
                                 thread=elsewhere, clicker=ASKER)
    client._connection.parse_interaction_create(payload)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
    (sent,) = fake_discord.of("POST", "webhooks")
    assert sent.json["flags"] & EPHEMERAL and "belongs to another conversation" in sent.json["content"]
    assert not sent.files

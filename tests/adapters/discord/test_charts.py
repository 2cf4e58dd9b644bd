"""Charts over Discord end to end: gateway payloads through discord.py, the real Agent with the scripted model,
real Postgres and Redis; the PNG is a multipart attachment on the fake's REST calls. The Chart button runs
the answer's query again as the person who clicks (row-level security shows which role it ran as)."""

from __future__ import annotations

from bot.wiring import build_agent
from tests import llm_server as llm
from tests.adapters.chart_env import SALES_SQL, png_size, png_software, sales_roles
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import USER_ID, FakeDiscord, user
from tests.adapters.discord.test_bot import custom_ids, mention
from tests.helpers import settings_for
from tests.llm_server import ScriptedLlmServer

BOB, EVE = user("1200000000000000561", "bob"), user("1200000000000000565", "eve")


async def test_a_chart_is_attached_and_the_chart_button_runs_as_the_clicker(
    fake_discord: FakeDiscord, make_client: ClientFactory, fresh_db: str, pg_admin_dsn: str,
    llm_server: ScriptedLlmServer, redis_url: str,
) -> None:
    async with sales_roles(fresh_db, pg_admin_dsn) as roles:
        settings = settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url, roles={
            f"discord:{USER_ID}": roles.asker, f"discord:{BOB['id']}": roles.clicker,
            f"discord:{EVE['id']}": roles.outsider})
        agent = build_agent(settings)
        try:
            client = await make_client(agent)

            # "plot" in the question: the answer's own table is drawn, no second query, attached as a PNG.
            llm_server.script(llm.tool_call("run_query", {"sql": SALES_SQL}), llm.text("North sold the most."))
            _, _, _, edit = await mention(fake_discord, client, "plot revenue by region")
            png = edit.files["chart-bar.png"]
            assert png_size(png) == (1000, 600) and png_software(png).startswith("Matplotlib")
            assert edit.json["content"] == "North sold the most."
            assert not [c for c in custom_ids(edit.json) if c.startswith("pgbot:chart:")]  # it has its chart

            llm_server.script(llm.tool_call("run_query", {"sql": SALES_SQL}), llm.text("Two regions sold."))
            _, thread, post, edit = await mention(fake_discord, client, "revenue by region?")
            assert not edit.files
            offered = [c for c in custom_ids(edit.json) if c.startswith("pgbot:chart:")]
            assert len(offered) == 1
            shown = fake_discord.messages[post.response["id"]]

            click = fake_discord.click(offered[0], message=shown, thread=thread.response, clicker=BOB)
            client._connection.parse_interaction_create(click)
            await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
            posted = fake_discord.of("POST", "webhooks")[0]
            assert f"run again as role {roles.clicker} (3 rows)" in posted.json["content"]
            assert f"Requested by <@{BOB['id']}>" in posted.json["content"]
            assert not posted.json.get("flags")  # in the thread for everyone
            assert png_size(posted.files["chart-bar.png"]) == (1000, 600)

            refused = fake_discord.click(offered[0], message=shown, thread=thread.response, clicker=EVE)
            client._connection.parse_interaction_create(refused)
            await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 2)
            note = fake_discord.of("POST", "webhooks")[1]
            assert note.json["flags"] & 64 and "permission" in note.json["content"].lower()
            assert not note.files
        finally:
            await agent.aclose()

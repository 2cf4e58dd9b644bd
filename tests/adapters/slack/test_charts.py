"""Charts over Slack end to end: signed events into bolt, the real Agent with the scripted model, real Postgres
and Redis; the PNG arrives through files_upload_v2's three steps on the fake Slack. The Chart button runs the
answer's query again as the person who clicks (row-level security shows which role it ran as)."""

from __future__ import annotations

from bot.wiring import build_agent
from tests import llm_server as llm
from tests.adapters.chart_env import SALES_SQL, png_size, png_software, sales_roles
from tests.adapters.slack.fake_slack import (
    BOT_USER_ID,
    FakeSlack,
    app_mention,
    block_actions,
    dispatch,
    event_body,
    new_ts,
    slack_settings,
)
from tests.adapters.slack.test_app import CHANNEL, FORM, ask, bot_message, buttons, texts
from tests.helpers import settings_for
from tests.llm_server import ScriptedLlmServer

ASKER, CLICKER, OUTSIDER = "U0USER0001", "U0BOB00001", "U0EVE00001"


async def test_a_chart_is_uploaded_in_the_thread_and_the_chart_button_runs_as_the_clicker(
    fake_slack: FakeSlack, fresh_db: str, pg_admin_dsn: str, llm_server: ScriptedLlmServer, redis_url: str
) -> None:
    from adapters.slack.app import build_slack_app

    async with sales_roles(fresh_db, pg_admin_dsn) as roles:
        settings = settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url, roles={
            f"slack:{ASKER}": roles.asker, f"slack:{CLICKER}": roles.clicker, f"slack:{OUTSIDER}": roles.outsider})
        agent = build_agent(settings)
        try:
            app = build_slack_app(agent, slack_settings(fake_slack))

            # The model draws the chart itself: the answer, then the PNG in the same thread.
            llm_server.script(llm.tool_call("make_chart", {"sql": SALES_SQL, "kind": "bar"}),
                              llm.text("North sold the most."))
            post, update = await ask(fake_slack, app, "plot revenue by region")
            await fake_slack.wait_for(lambda f: len(f.of("files.completeUploadExternal")) == 1)
            start = fake_slack.of("files.getUploadURLExternal")[0].args
            done = fake_slack.of("files.completeUploadExternal")[0].args
            assert start["filename"] == "chart-bar.png"
            assert done["channel_id"] == CHANNEL and done["thread_ts"] == post.args["thread_ts"]
            assert done["files"][0]["title"] == "Revenue by region"
            png = fake_slack.uploads[done["files"][0]["id"]]
            assert png_size(png) == (1000, 600) and png_software(png).startswith("Matplotlib")
            assert "North sold the most." in texts(update.args["blocks"])[0]
            assert "pgbot_chart" not in [a for a, _ in buttons(update.args["blocks"])]  # it has its chart

            # No chart asked for: the answer offers the Chart button instead.
            llm_server.script(llm.tool_call("run_query", {"sql": SALES_SQL}), llm.text("Two regions sold."))
            post, update = await ask(fake_slack, app, "revenue by region?")
            offered = [value for action, value in buttons(update.args["blocks"]) if action == "pgbot_chart"]
            assert len(offered) == 1
            shown = bot_message(post, update)

            # Someone else clicks: their own role runs the query (RLS shows them 3 regions, not the asker's 2).
            click = block_actions(action_id="pgbot_chart", value=offered[0], message=shown, user=CLICKER)
            assert (await dispatch(app, click, content_type=FORM)).status == 200
            await fake_slack.wait_for(lambda f: len(f.of("files.completeUploadExternal")) == 2)
            done = fake_slack.of("files.completeUploadExternal")[1].args
            assert done["thread_ts"] == post.args["thread_ts"]
            comment = done["initial_comment"]
            assert f"run again as role {roles.clicker} (3 rows)" in comment
            assert f"Requested by <@{CLICKER}>" in comment
            assert png_size(fake_slack.uploads[done["files"][0]["id"]]) == (1000, 600)

            # A role that may not read the table: told privately, nothing uploaded, the asker's role not used.
            refused = block_actions(action_id="pgbot_chart", value=offered[0], message=shown, user=OUTSIDER)
            assert (await dispatch(app, refused, content_type=FORM)).status == 200
            await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
            note = fake_slack.of("chat.postEphemeral")[0].args
            assert note["user"] == OUTSIDER and "permission" in note["text"].lower()
            # The same answer id on a button in another thread: refused, nothing runs.
            moved = block_actions(action_id="pgbot_chart", value=offered[0], message={**shown, "thread_ts": new_ts()},
                                  user=CLICKER)
            assert (await dispatch(app, moved, content_type=FORM)).status == 200
            await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 2)
            assert "belongs to another conversation" in fake_slack.of("chat.postEphemeral")[1].args["text"]
            await fake_slack.handled()
            assert len(fake_slack.of("files.completeUploadExternal")) == 2
        finally:
            await agent.aclose()


async def test_a_chart_asked_for_in_words_is_drawn_from_the_answer_and_a_failed_upload_is_said(
    fake_slack: FakeSlack, fresh_db: str, llm_server: ScriptedLlmServer, redis_url: str
) -> None:
    """The model only ran a query; "bar chart" in the question draws it. Slack refusing the upload is reported
    in the thread, the answer stays."""
    from adapters.slack.app import build_slack_app

    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url))
    try:
        app = build_slack_app(agent, slack_settings(fake_slack))
        sql = "SELECT 'r' || g AS region, g * 10 AS revenue FROM generate_series(1, 30) g"
        llm_server.script(llm.tool_call("run_query", {"sql": sql}), llm.text("Here it is."))
        # Both uploads fail: the result's CSV (30 rows do not all show) and then the chart.
        fake_slack.fail_next("files.getUploadURLExternal", error="not_allowed_token_type", times=2)
        mention = app_mention(f"<@{BOT_USER_ID}> bar chart of revenue by region", ts=new_ts())
        assert (await dispatch(app, event_body(mention))).status == 200
        await fake_slack.wait_for(lambda f: any("chart could not be attached" in c.args.get("text", "")
                                                for c in f.of("chat.postMessage")))
        shown = texts(fake_slack.of("chat.update")[-1].args["blocks"])[0]
        assert "Chart: Showing the 19 largest of 30 region values; the other 11 are summed as “Other”." in shown
        assert not fake_slack.of("files.completeUploadExternal")
    finally:
        await agent.aclose()

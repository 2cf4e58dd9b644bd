"""Reply → content + embeds within Discord's limits, and the buttons each reply gets."""

from __future__ import annotations

from adapters.discord import render
from adapters.discord.views import view_for
from core import Reply, ReplyKind, ResultTable
from tests.adapters.slack.agent_double import ACTION_ID, CHANGE_SQL, approval_reply


def test_answer_content_aligned_table_and_context_with_sql_on_request() -> None:
    table = ResultTable(columns=("country", "orders"), rows=(("FR", 72), ("DE", 8), (None, 10)),
                        kinds=("text", "int"))
    reply = Reply(kind=ReplyKind.ANSWER, text="**72** orders come from FR", sql=("SELECT 1;", "SELECT 2"),
                  table=table, database="shop", answer_id="a1")
    shown = render.render(reply)
    assert shown.content == "**72** orders come from FR"  # Discord speaks markdown already
    (grid,) = shown.embeds  # the SQL is behind Show SQL
    assert (grid.description or "").splitlines() == ["```", "country | orders", "--------+-------",
                                                     "FR      |     72", "DE      |      8", "—       |     10", "```"]
    assert grid.footer.text == "shop · 3 rows"
    assert [i.custom_id for i in view_for(reply).children] == [  # type: ignore[union-attr, attr-defined]
        "pgbot:sql:a1", "pgbot:fb:up:a1", "pgbot:fb:down:a1", "pgbot:chart:a1", "pgbot:edit:a1"]
    grid, sql = render.render(reply, show_sql="inline").embeds
    assert sql.description == "```sql\nSELECT 1;\n\nSELECT 2;\n```"
    assert view_for(reply, show_sql="inline").children[0].custom_id == "pgbot:fb:up:a1"  # type: ignore


def test_everything_stays_within_discord_limits() -> None:
    rows = tuple((i, "x" * 55, "```") for i in range(5000))
    table = ResultTable(columns=("id", "pad", "fence"), rows=rows, truncated=True, row_cap=5000)
    reply = Reply(kind=ReplyKind.RESULT, text="t" * 5000, sql=("SELECT '```' " + "x" * 5000,), table=table)
    shown = render.render(reply)
    assert len(shown.content) <= render.CONTENT_LIMIT
    assert all(len(e.description or "") <= render.DESCRIPTION_LIMIT for e in shown.embeds)
    assert sum(len(e) for e in shown.embeds) <= render.EMBEDS_TOTAL_LIMIT
    grid, sql = shown.embeds
    for embed in (sql, grid):
        body = embed.description or ""
        assert body.endswith("\n```") and body.count("```") == 2  # inner fences broken, closing fence kept
    assert len((grid.description or "").splitlines()) - 4 == 15
    assert grid.footer.text == ("showing 15 of 5,000+ · 1 more column in result.csv · more rows exist: /export with "
                                "the query gives every row\n5,000+ rows")
    text, csv_file = shown.files
    assert text.filename == "answer.md" and text.data == b"t" * 5000
    assert shown.content.endswith("\n-# cut here: the whole answer is in answer.md")
    assert csv_file.filename == "result.csv" and len(csv_file.data.decode().splitlines()) == 5001


def test_long_cells_are_cut_in_the_table_and_whole_in_the_csv() -> None:
    long = "a, \"quoted\"\nsecond line " + "y" * 100
    shown = render.render(Reply(kind=ReplyKind.RESULT, text="1 row",
                                table=ResultTable(columns=("id", "note"), rows=((1, long), (2, None)))))
    assert "…" in (shown.embeds[0].description or "") and "⏎" in (shown.embeds[0].description or "")
    (csv_file,) = shown.files
    assert csv_file.data.decode() == f'id,note\r\n1,"{long.replace(chr(34), chr(34) * 2)}"\r\n2,\r\n'
    short = render.render(Reply(kind=ReplyKind.RESULT, text="x" * 2000,
                                table=ResultTable(columns=("n",), rows=((1,),))))
    assert short.files == [] and short.content == "x" * 2000


def test_approval_card_asks_shows_the_diff_and_mentions_who_may_approve() -> None:
    reply = approval_reply()
    shown = render.render(reply)
    card, sql = shown.embeds  # the after rows are not shown a second time
    assert card.title == "Approve: UPDATE 1 row in orders?"
    assert card.description == "```\nid 42: status pending → cancelled\n```\nThis UPDATE on orders would affect 1 row."
    assert {f.name: f.value for f in card.fields} == {
        "Database": "shop", "Runs as": "analyst", "Requested by": "slack:U0USER0001",
        "Expires": f"<t:{int(reply.approval.expires_at)}:R>",  # type: ignore[union-attr]
        "May approve": "<@1200000000000000006>, anyone with database role dba or 1 approver on another platform",
    }
    assert sql.description == f"```sql\n{CHANGE_SQL};\n```"
    assert "This change needs approval." not in shown.content  # the model's text is not the card's
    assert shown.content.endswith("**May approve:** <@1200000000000000006>, anyone with database role dba or "
                                  "1 approver on another platform")
    # Exactly the approvers may be pinged (the client's default is no mentions at all).
    assert shown.mentions is not None and [u.id for u in shown.mentions.users] == [1200000000000000006]  # type: ignore[union-attr]
    view = view_for(reply)
    assert view is not None and view.timeout is None and view.is_persistent()
    assert [item.custom_id for item in view.children] == [  # type: ignore[attr-defined]
        f"pgbot:approve:{ACTION_ID}", f"pgbot:reject:{ACTION_ID}",
    ]


def test_working_and_error_replies_have_no_buttons() -> None:
    working = Reply(kind=ReplyKind.WORKING, text="Working on it…")
    assert render.render(working).content == "⏳ Working on it…" and view_for(working) is None
    error = render.render(Reply(kind=ReplyKind.ERROR, text="Internal error, id=abc.", error_id="abc"))
    assert error.content == "⚠️ Internal error, id=abc.\n-# error id: abc"

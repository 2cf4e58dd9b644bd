"""Reply → Block Kit: content, escaping, and Slack's size limits."""

from __future__ import annotations

import json

from adapters.slack import render
from adapters.slack.blocks import MAX_BLOCKS, SECTION_LIMIT, section, to_mrkdwn
from core import Reply, ReplyKind, ResultTable
from tests.adapters.slack.agent_double import ACTION_ID, CHANGE_SQL, approval_reply


def _texts(blocks: list[dict[str, object]]) -> list[str]:
    out = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            out.append(str(text["text"]))
        for element in block.get("elements", []) or []:  # type: ignore[attr-defined]
            if isinstance(element, dict) and element.get("type") == "mrkdwn":
                out.append(str(element["text"]))
    return out


def test_answer_has_text_table_context_and_buttons_in_that_order() -> None:
    table = ResultTable(columns=("country", "orders"), rows=(("FR", 72), ("DE", 8), (None, 10)),
                        kinds=("text", "int"))
    reply = Reply(kind=ReplyKind.ANSWER, text="**72** orders come from FR", sql=("SELECT country, count(*) FROM o",),
                  table=table, database="shop", answer_id="ans123")
    shown = render.render(reply, native_table=False)
    texts = _texts(shown.blocks)
    assert texts[0] == "*72* orders come from FR"
    assert texts[1].splitlines()[1:6] == ["country | orders", "--------+-------", "FR      |     72",
                                          "DE      |      8", "—       |     10"]
    assert texts[2] == "shop · 3 rows"  # the context line closes the message; the SQL waits behind its button
    assert not any("SELECT" in t for t in texts)
    actions = shown.blocks[-1]
    assert actions["type"] == "actions"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("pgbot_show_sql", "ans123"), ("pgbot_feedback_up", "ans123"), ("pgbot_feedback_down", "ans123"),
    ]
    assert shown.text == "**72** orders come from FR"
    inline = _texts(render.render(reply, show_sql="inline", native_table=False).blocks)
    assert inline[2] == "```\nSELECT country\n     , count(*)\nFROM o\n```" and inline[3] == "shop · 3 rows"


def test_markup_characters_are_escaped_everywhere() -> None:
    reply = Reply(kind=ReplyKind.RESULT, text="a <b> & c", sql=("SELECT 1 WHERE 2 > 1 AND '<@U1>' <> ''",),
                  table=ResultTable(columns=("x<y",), rows=(("<!channel>",),)))
    body = json.dumps(render.render(reply).blocks)
    assert "<b>" not in body and "<!channel>" not in body and "<@U1>" not in body
    assert "a &lt;b&gt; &amp; c" in body and "2 &gt; 1" in body


def test_big_table_is_cut_to_section_limit_with_a_note() -> None:
    rows = tuple((i, "x" * 50, None) for i in range(1000))
    table = ResultTable(columns=("id", "pad", "empty"), rows=rows, truncated=True, row_cap=1000)
    blocks = render.table_blocks(table)
    assert len(blocks[0]["text"]["text"]) <= SECTION_LIMIT
    assert blocks[0]["text"]["text"].endswith("\n```")
    note = blocks[1]["elements"][0]["text"]
    shown = blocks[0]["text"]["text"].count("\n") - 3
    assert note == f"… {1000 - shown} more rows · result cut at 1000 rows; more exist (/export gives every row)"


def test_escaping_growth_still_fits() -> None:
    table = ResultTable(columns=("v",), rows=tuple(("<" * 50,) for _ in range(200)))
    text = render.table_blocks(table)[0]["text"]["text"]
    assert len(text) <= SECTION_LIMIT and "&lt;" in text and text.endswith("```")


def test_long_text_and_many_statements_respect_block_limits() -> None:
    reply = Reply(kind=ReplyKind.ANSWER, text="word " * 5000, sql=tuple(f"SELECT {i}" for i in range(80)),
                  answer_id="a1")
    shown = render.render(reply, show_sql="inline")
    assert len(shown.blocks) == MAX_BLOCKS
    assert all(len(t) <= SECTION_LIMIT for t in _texts(shown.blocks))
    assert shown.blocks[-1]["block_id"] == render.FEEDBACK_BLOCK  # the buttons survive the cut
    assert shown.blocks[-2]["block_id"] == render.EDIT_BLOCK
    assert "more blocks not shown" in _texts(shown.blocks[-3:-2])[0]
    assert len(shown.text) <= render.FALLBACK_LIMIT


def test_approval_card_asks_shows_the_diff_who_may_approve_and_buttons() -> None:
    shown = render.render(approval_reply())
    assert shown.blocks[0]["text"]["text"] == "Approve: UPDATE 1 row in orders?"
    texts = _texts(shown.blocks)
    assert texts[1:3] == ["```\nid 42: status pending → cancelled\n```", "This UPDATE on orders would affect 1 row."]
    assert f"```\n{CHANGE_SQL}\n```" in texts
    assert not any("This change needs approval." in t for t in texts)  # the model's text is not on the card
    assert not any("| status" in t for t in texts)  # the after rows are not shown a second time
    fields = [f["text"] for b in shown.blocks for f in b.get("fields", [])]
    assert "*Requested by:* <@U0USER0001>" in fields and "*Runs as:* analyst" in fields
    # Slack approvers by mention; another platform's approver counted; an approver role said by name.
    assert "*May approve:* <@U0APPROVER>, anyone with database role dba or 1 approver on another platform" in texts
    assert "<@U0APPROVER>" in shown.text  # the notification text names them too
    buttons = shown.blocks[-1]["elements"]
    assert [(b["action_id"], b["value"], b.get("style")) for b in buttons] == [
        ("pgbot_approve", ACTION_ID, "primary"), ("pgbot_reject", ACTION_ID, "danger"),
    ]


def test_working_and_error_replies() -> None:
    working = render.render(Reply(kind=ReplyKind.WORKING, text="Working on it…"))
    assert working.blocks == [section(":hourglass_flowing_sand: Working on it…")]
    error = render.render(Reply(kind=ReplyKind.ERROR, text="Internal error, id=abc.", error_id="abc"))
    assert _texts(error.blocks) == [":warning: Internal error, id=abc.", "error id: abc"]


def test_model_markdown_becomes_slack_mrkdwn() -> None:
    text = "## Top customers\n**Alice** bought most, see [docs](https://example.com/x).\n```sql\nSELECT 1\n```"
    assert to_mrkdwn(text) == (
        "*Top customers*\n*Alice* bought most, see docs (<https://example.com/x>).\n```\nSELECT 1\n```"
    )


def test_a_table_that_fits_is_complete_and_attaches_nothing() -> None:
    table = ResultTable(columns=("id", "name"), rows=((1, "a"), (2, None)))
    blocks, complete = render.fit_table(table, file_note=True)
    assert complete and len(blocks) == 1
    assert render.render(Reply(kind=ReplyKind.RESULT, text="2 rows", table=table)).file is None


def test_too_wide_keeps_leading_columns_and_attaches_every_column_as_csv() -> None:
    columns = tuple(f"c{i}" for i in range(60))
    table = ResultTable(columns=columns, rows=((*("v" * 55 for _ in range(59)), "last, with \"quotes\""),))
    blocks, complete = render.fit_table(table, file_note=True)
    assert not complete
    grid = blocks[0]["text"]["text"]
    assert len(grid) <= SECTION_LIMIT and "c0 " in grid and "c59" not in grid
    shown_columns = grid.splitlines()[1].count("|") + 1
    assert _texts(blocks[1:]) == [f"{60 - shown_columns} more columns · the full result is in the CSV file below"]
    file = render.render(Reply(kind=ReplyKind.RESULT, text="1 row", table=table, database="shop")).file
    assert file is not None and file.filename == "shop-1-rows.csv"
    header, row = file.content.decode().splitlines()
    assert header == ",".join(columns) and row.endswith(',"last, with ""quotes"""')


def test_long_or_multiline_cells_are_cut_in_chat_so_the_csv_follows() -> None:
    for value in ("x" * 61, "two\nlines"):
        table = ResultTable(columns=("note",), rows=((value,),))
        blocks, complete = render.fit_table(table, file_note=True)
        assert not complete and _texts(blocks[1:]) == ["the full result is in the CSV file below"]
        shown = render.render(Reply(kind=ReplyKind.RESULT, text="1 row", table=table))
        assert shown.file is not None and value in shown.file.content.decode()
    assert render.render(approval_reply()).file is None  # an approval's preview is never a download

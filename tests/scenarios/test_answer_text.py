"""``[llm] answer_text``: after a successful query, pgbot states the result itself (no second model call) for a
model that writes its queries as text, or always with "result"; the model answers with "model". Through the real
Agent, the scripted HTTP model and real Postgres: what each mode sends, shows and keeps, and the cases where the
turn must go back to the model (a failed query, a look at the schema, a change, a database switch).
"""

from __future__ import annotations

import pytest

from bot.wiring import build_agent
from core import ReplyKind
from core.llm.base import ReadScope
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for
from tests.scenarios.test_model_robustness import ask

COUNT_SQL = "SELECT count(*) AS n FROM customers"
LIST_SQL = "SELECT id, name FROM customers WHERE country IS NULL ORDER BY id"


async def test_auto_states_the_result_of_a_query_written_as_text_with_one_model_call(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.sql_block(COUNT_SQL, prose="To count the customers I'll run: The answer is **12**."))
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    agent = build_agent(settings)
    try:
        reply = await final_reply(agent, message("How many customers are there?", thread="t-stated"))
        kept = await agent.store.history(message("x", thread="t-stated").thread_key,
                                         viewer=ReadScope(database="shop", role=None))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.text == "n: 20" and reply.sql == (COUNT_SQL,)
    assert reply.table is not None and reply.table.rows == ((20,),) and reply.answer_id  # 👍/👎, Show SQL, Export
    assert len(llm_server.requests) == 1 and "12" not in reply.text  # the model's guess is not the answer
    assert [t.role for t in kept] == ["user", "assistant", "tool", "assistant"] and kept[-1].content == "n: 20"


async def test_auto_lets_a_model_with_native_tool_calls_answer_in_its_own_words(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.tool_call("run_query", {"sql": COUNT_SQL}), llm.text("There are 20 customers."))
    reply, _ = await ask(fresh_db, llm_server, "How many customers are there?", answer_text="auto")
    assert reply.text == "There are 20 customers." and len(llm_server.requests) == 2


async def test_model_mode_asks_the_model_even_for_a_query_written_as_text(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.sql_block(COUNT_SQL), llm.text("There are 20 customers."))
    reply, _ = await ask(fresh_db, llm_server, "How many customers are there?", answer_text="model")
    assert reply.text == "There are 20 customers." and len(llm_server.requests) == 2


@pytest.mark.parametrize(("sql", "stated"), [
    (LIST_SQL, "The query returned 4 rows."),
    ("SELECT name FROM customers WHERE id = 7", "name: `customer 7`"),  # text from the database: quoted
    ("SELECT id FROM customers WHERE id > 100", "The query returned no rows."),
    ("SELECT sum(total) AS revenue FROM orders", "revenue: 6,142.50"),  # numbers as the table shows them
    ("SELECT '<!channel> [x](http://evil.example) `y`' AS \"**hi** <@U1>\"",
     "`**hi** <@U1>`: `<!channel> [x](http://evil.example) 'y'`"),  # markup only ever inside backticks
])
async def test_result_mode_states_native_query_results_as_the_table_shows_them(
    fresh_db: str, llm_server: llm.ScriptedLlmServer, sql: str, stated: str
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.tool_call("run_query", {"sql": sql}))
    reply, _ = await ask(fresh_db, llm_server, "Which customers have no country?", answer_text="result")
    assert reply.kind is ReplyKind.ANSWER and reply.text == stated and len(llm_server.requests) == 1


async def test_a_cut_result_says_more_rows_exist(fresh_db: str, llm_server: llm.ScriptedLlmServer) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT id FROM orders"}))
    settings = settings_for(fresh_db, llm_url=llm_server.base_url, max_rows=50)
    settings.llm.answer_text = "result"
    agent = build_agent(settings)
    try:
        reply = await final_reply(agent, message("List the order ids"))
    finally:
        await agent.aclose()
    assert reply.text == "The query returned 50+ rows." and reply.table is not None and reply.table.truncated


async def test_a_failed_query_goes_back_to_the_model_and_its_fix_is_stated(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.sql_block("SELECT count(*) AS n FROM customer"), llm.sql_block(COUNT_SQL))
    reply, _ = await ask(fresh_db, llm_server, "How many customers are there?", answer_text="auto")
    assert reply.text == "n: 20" and reply.sql == (COUNT_SQL,) and len(llm_server.requests) == 2
    fed_back = str(llm_server.requests[1]["messages"][-1]["content"])  # type: ignore[index]
    assert 'relation "customer" does not exist' in fed_back


async def test_a_look_at_the_schema_is_not_an_answer(fresh_db: str, llm_server: llm.ScriptedLlmServer) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.tool_call("describe_table", {"table": "customers"}),
                      llm.tool_call("run_query", {"sql": COUNT_SQL}))
    reply, _ = await ask(fresh_db, llm_server, "How many customers are there?", answer_text="result")
    assert reply.text == "n: 20" and len(llm_server.requests) == 2


async def test_a_change_written_as_text_is_still_held_for_approval(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.sql_block("UPDATE customers SET country = 'DE' WHERE id = 5"))
    reply, _ = await ask(fresh_db, llm_server, "Set customer 5's country to DE", answer_text="result")
    assert reply.kind is ReplyKind.APPROVAL and len(llm_server.requests) == 1


async def test_relative_dates_are_still_stated_with_the_result(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.sql_block("SELECT count(*) AS n FROM orders WHERE created_at >= date_trunc('month', now())"))
    reply, _ = await ask(fresh_db, llm_server, "How many orders this month?", answer_text="auto")
    assert reply.text.startswith("n: 0\n\nDates used (database time zone ") and "this month = " in reply.text
    assert reply.notes.dates is not None


async def test_a_follow_up_sees_the_stated_answer_in_the_history(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    france = "SELECT count(*) AS n FROM customers WHERE country = 'FR'"
    llm_server.script(llm.sql_block(COUNT_SQL), llm.sql_block(france))
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.llm.answer_text = "auto"
    agent = build_agent(settings)
    try:
        await final_reply(agent, message("How many customers are there?", thread="t-follow"))
        second = await final_reply(agent, message("and in France?", thread="t-follow"))
    finally:
        await agent.aclose()
    assert second.text == "n: 16"
    sent = llm_server.requests[1]["messages"]
    assert any(m["role"] == "assistant" and m["content"] == "n: 20" for m in sent)  # type: ignore[index,union-attr]


async def test_a_block_cut_at_the_stop_sequence_is_run_and_stated(
    fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    llm_server.script(llm.text(f"To count them I'll run:\n```sql\n{COUNT_SQL};\n"))  # no closing fence
    reply, _ = await ask(fresh_db, llm_server, "How many customers are there?", tool_mode="text")
    assert reply.kind is ReplyKind.ANSWER and reply.text == "n: 20" and reply.sql == (COUNT_SQL,)
    assert llm_server.requests[0]["stop"] == ["```\n\n", "\nResult of "]

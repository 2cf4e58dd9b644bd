"""Pure parsing of what small models write instead of tool calls (core.llm.textcalls) and of which numbers
an answer may state (core.agent.grounding). Whole turns over HTTP are in tests/scenarios/test_endpoint_shapes.py
and test_model_robustness.py."""

from __future__ import annotations

import json
import time

import pytest

from core.agent.grounding import repeats_earlier_sql, unbacked_numbers
from core.llm.base import ToolCall
from core.llm.textcalls import (
    cut_imitation,
    extract_text_tool_calls,
    imitates_tool_output,
    load_jsonish,
    looks_like_a_call,
    repair_arguments,
    sql_in_text,
)

KNOWN = {"run_query", "list_tables"}


@pytest.mark.parametrize(("payload", "expected"), [
    ('{"sql": """SELECT 1\nFROM t"""}', {"sql": "SELECT 1\nFROM t"}),
    ("{'sql': 'SELECT 1',}", {"sql": "SELECT 1"}),
    ('{"a": [1, 2,], "b": true, "c": null}', {"a": [1, 2], "b": True, "c": None}),
    ('{"sql": "SELECT 1\nFROM t"}', {"sql": "SELECT 1\nFROM t"}),  # a raw newline inside a JSON string
])
def test_near_json_is_repaired(payload: str, expected: object) -> None:
    assert load_jsonish(payload) == expected


@pytest.mark.parametrize("payload", [
    "The answer is 12", '{"sql": "SELECT 1"', "__import__('os').system('id')", "{'a': open('/etc/passwd')}",
    "[" * 100_000, "{'a':" * 20_000, "(" * 40_000, "{'x': '" + "y" * 60_000 + "'}",
])
def test_what_is_not_near_json_is_refused_quickly_and_never_run(payload: str) -> None:
    started = time.monotonic()
    assert load_jsonish(payload) is None
    assert time.monotonic() - started < 1.0


def test_arguments_are_repaired_to_json_text_or_left_for_validation() -> None:
    assert json.loads(repair_arguments("{'sql': 'SELECT 1'}")) == {"sql": "SELECT 1"}
    assert repair_arguments({"sql": "SELECT 1"}) == '{"sql": "SELECT 1"}'
    assert repair_arguments(None) == "{}"
    assert repair_arguments("not json at all") == "not json at all"  # the agent's validation explains it
    assert json.loads(repair_arguments({"x": {1, 2}})) == "{'x': {1, 2}}"  # a set: a string, refused later


@pytest.mark.parametrize("content", [
    '{"tool": "run_query", "parameters": {"sql": "SELECT 1"}}',
    '{"function": "run_query", "args": {"sql": "SELECT 1"}}',
    '{"tool_calls": [{"type": "function", "function": {"name": "run_query", "arguments": {"sql": "SELECT 1"}}}]}',
    '{"name": "run_query", "arguments": "{\\"sql\\": \\"SELECT 1\\"}", "id": "x", "index": 0}',
    "<tool_call>\n{'name': 'run_query', 'arguments': {'sql': 'SELECT 1',},}\n</tool_call>",
    '```json\n{"name": "run_query", "sql": "SELECT 1"}\n```',  # flat: the arguments beside the name (1.5B model)
])
def test_call_variants_are_recovered(content: str) -> None:
    rest, calls = extract_text_tool_calls(content, KNOWN, parameters={"run_query": ("sql",)})
    assert rest == "" and [(c.name, json.loads(c.arguments)) for c in calls] == [("run_query", {"sql": "SELECT 1"})]


def test_objects_that_are_not_exactly_calls_stay_text() -> None:
    flat = {"run_query": ("sql",)}
    assert extract_text_tool_calls('{"name": "run_query", "note": "x"}', KNOWN, parameters=flat)[1] == []
    assert extract_text_tool_calls('{"name": "run_query", "sql": "SELECT 1"}', KNOWN)[1] == []  # names unknown
    for content in ('{"name": "run_query", "arguments": {}, "note": "x"}', '{"name": "drop_db", "arguments": {}}',
                    '{"name": "run_query", "tool": "list_tables"}'):
        assert extract_text_tool_calls(content, KNOWN)[1] == []


@pytest.mark.parametrize(("content", "sql"), [
    ("Counting:\n```sql\nSELECT 1;\n```", "SELECT 1;"),
    ("```\nSELECT count(*) FROM t\n```", "SELECT count(*) FROM t"),
    ("  select count(*) from t;  ", "select count(*) from t;"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT 1) SELECT * FROM x"),
    ("Select the orders table, then count the rows.", None),
    ("Commit", None),  # parses as SQL, but a bare reply only counts when it is a SELECT/WITH
    ("Analyze", None),
    ("```\nnot sql at all\n```", None),
    ("SELECT 1; SELECT 2", None),  # bare text must be one statement (a fenced block goes to the guard as is)
])
def test_sql_written_instead_of_a_call(content: str, sql: str | None) -> None:
    assert sql_in_text(content)[1] == sql


def test_imitated_tool_output_is_recognised_and_cut() -> None:
    assert imitates_tool_output("<tool_response>\n[]\n</tool_response>\nThere are 12.")
    assert imitates_tool_output("ok\nResult of list_tables: customers")
    assert imitates_tool_output("<|im_start|>tool\n12")
    assert not imitates_tool_output("The result of the query is 12.")
    assert cut_imitation("I'll look.\n<tool_response>12</tool_response> So 12.") == "I'll look."


def test_broken_calls_are_recognised() -> None:
    assert looks_like_a_call('```json\n{"name": "run_query", "arguments": {"sql": "```', KNOWN)
    assert looks_like_a_call("<tool_call>{oops", KNOWN)
    assert not looks_like_a_call("I used run_query to count them: 20.", KNOWN)
    assert not looks_like_a_call('{"name": "drop_db"}', KNOWN)


def test_numbers_an_answer_may_state() -> None:
    sources = ["How many orders in the last 7 days?", "n\n1234\n12.50"]
    assert unbacked_numbers("1,234 orders, 12.5 on average, over 7 days.", sources) == []
    assert unbacked_numbers("1. Open the table\n2. Count: 99 rows", sources) == ["99"]
    assert unbacked_numbers("Table t2 and v1 hold 12 rows.", sources) == ["12"]


def test_sql_shown_beside_an_answer_repeats_what_ran() -> None:
    call = ToolCall(id="c1", name="run_query", arguments='{"sql": "SELECT  count(*)\\nFROM t;"}')
    assert repeats_earlier_sql([call], ["SELECT count(*) FROM t"])
    assert not repeats_earlier_sql([call], ["SELECT 1"])
    assert not repeats_earlier_sql([ToolCall(id="c2", name="list_tables")], ["SELECT count(*) FROM t"])

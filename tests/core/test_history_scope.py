"""What another role's turn may see of thread history: hostile model output tries every field to carry rows."""

from __future__ import annotations

import json

import pytest

from core.llm.base import ChatTurn, ReadScope, ToolCall
from core.threads.history_scope import WITHHELD_ARGUMENT, is_own, mask_sql, visible_history, who, withheld_marker

DBA = ReadScope(database="hr", role="dba")
READER = ReadScope(database="hr", role="readonly")
SECRET = "123456"


def call(arguments: str, *, name: str = "run_query", call_id: str = "c1") -> ChatTurn:
    return ChatTurn(role="assistant", content="", read_as=(DBA,),
                    tool_calls=(ToolCall(id=call_id, name=name, arguments=arguments),))


def leaked(turns: list[ChatTurn]) -> bool:
    return any(SECRET in turn.model_dump_json() for turn in turns)


def test_own_turns_are_untouched_and_scope_is_database_and_role() -> None:
    turns = [ChatTurn(role="tool", tool_call_id="c1", content=SECRET, read_as=(DBA,))]
    assert visible_history(turns, DBA) == turns
    for viewer in (READER, ReadScope(database="payroll", role="dba"), ReadScope(database="hr", role=None)):
        assert leaked(turns) and not leaked(visible_history(turns, viewer))


def test_a_turn_that_read_under_two_scopes_is_nobodys_own() -> None:
    both = ChatTurn(role="assistant", content=f"hr says {SECRET}", read_as=(DBA, READER))
    assert not is_own(both, DBA) and not is_own(both, READER)
    assert not is_own(ChatTurn(role="assistant", content="x"), DBA)  # untagged: always foreign
    assert visible_history([both], READER)[0].content == withheld_marker((DBA, READER), what="answer from results")


@pytest.mark.parametrize("turn", [
    ChatTurn(role="assistant", content=f"Alice earns {SECRET}.", read_as=(DBA,)),  # the final answer
    ChatTurn(role="assistant", content=f"Did you mean Alice ({SECRET})?", read_as=(DBA,)),  # a clarification
    ChatTurn(role="assistant", content=f"Result: {SECRET}\nSQL: SELECT 1", read_as=(DBA,)),  # a /sql summary
    ChatTurn(role="tool", tool_call_id="c1", name="run_query", content=f"salary\n{SECRET}", read_as=(DBA,)),
    ChatTurn(role="system", content=SECRET, read_as=(DBA,)),
    call(json.dumps({"question": f"Alice has {SECRET}, right?"}), name="ask_clarification"),
    call(json.dumps({"sql": f"SELECT {SECRET}"})),
    call(json.dumps({"sql": f"SELECT 'Alice {SECRET}'"})),
    call(json.dumps({"sql": f"SELECT $${SECRET}$$, E'\\x{SECRET}', U&'{SECRET}', B'1' /* {SECRET} */ -- {SECRET}"})),
    call(json.dumps({"sql": f"SELECT {SECRET}.5e3, x'{SECRET}'"})),
    call(json.dumps({"up_sql": f"UPDATE t SET a = {SECRET}", "down_sql": f"-- {SECRET}\nSELECT 1", "name": SECRET}),
         name="propose_migration"),
    call(json.dumps({"columns": [SECRET], "table": SECRET, "unique": True}), name="propose_index"),
    call(json.dumps({"sql": 123456}), name="run_query"),  # a number where SQL belongs
    call(json.dumps({f"k{SECRET}": "x"})),  # a key carrying data
    call(f"not json {SECRET}"),
    call(json.dumps([SECRET])),
    call("{}", call_id=f"id-{SECRET}"),  # the id is the model's text too
    call("{}", name=f"no such tool {SECRET}!"),
    call(json.dumps({"sql": f"SELECT '{SECRET}"})),  # does not lex: withheld whole
])
def test_every_field_that_can_carry_rows_is_withheld_from_another_role(turn: ChatTurn) -> None:
    seen = visible_history([turn], READER)
    assert leaked([turn]) and not leaked(seen)
    assert seen[0].role == turn.role and len(seen[0].tool_calls) == len(turn.tool_calls)


def test_questions_and_the_shape_of_sql_stay_for_follow_ups() -> None:
    turns = [
        ChatTurn(role="user", content="salaries in sales above 100000?", read_as=(DBA,)),
        call(json.dumps({"sql": "SELECT name, salary\nFROM hr.salaries  WHERE dept = 'sales' AND salary > 100000"})),
        ChatTurn(role="tool", tool_call_id="c1", name="run_query", content="Alice 123456", read_as=(DBA,)),
    ]
    user, assistant, tool = visible_history(turns, READER)
    assert user == turns[0]
    assert json.loads(assistant.tool_calls[0].arguments) == {
        "sql": "SELECT name, salary FROM hr.salaries WHERE dept = $1 AND salary > $2"}
    assert assistant.tool_calls[0].name == "run_query" and assistant.tool_calls[0].id == tool.tool_call_id
    assert tool.content == withheld_marker((DBA,)) and 'role "dba" on database "hr"' in (tool.content or "")


def test_call_ids_stay_paired_across_turns() -> None:
    turns = [call("{}", call_id="a"), ChatTurn(role="tool", tool_call_id="a", content="1", read_as=(DBA,)),
             call("{}", call_id="b"), ChatTurn(role="tool", tool_call_id="b", content="2", read_as=(DBA,))]
    seen = visible_history(turns, READER)
    assert [seen[0].tool_calls[0].id, seen[1].tool_call_id, seen[2].tool_calls[0].id, seen[3].tool_call_id] == [
        "withheld_1", "withheld_1", "withheld_2", "withheld_2"]


def test_mask_sql_needs_no_parser_and_bounds_its_input() -> None:
    deep = "SELECT " + "+".join(["1"] * 9000)  # deeper than the parser takes: the lexer does not care
    assert mask_sql(deep).startswith("SELECT $1+$2+$3")
    assert mask_sql("SELECT 1" + " " * 30_000) == WITHHELD_ARGUMENT
    assert mask_sql('SELECT "näme" FROM t WHERE x = \'é\'') == 'SELECT "näme" FROM t WHERE x = $1'


def test_who_names_the_login_role_and_unknown_history() -> None:
    assert who((ReadScope(database="shop"),)) == 'pgbot\'s login role on database "shop"'
    assert "before pgbot kept roles" in who(())

"""core.cards: what an approval card says to people (pure logic; the flows run in tests/adapters/*/test_cards.py)."""

from __future__ import annotations

from core.card_state import CardState, CardStatus
from core.cards import approval_question, approvers_of, row_diff, state_text, who_may_approve
from core.config import DatabaseSettings
from core.messages import ResultTable
from core.threads.turn_status import command_phase, tool_phase
from core.tools.clarify import clarification_choices

COLUMNS = ("id", "status", "total", "note")
KINDS = ("int", "text", "numeric", "text")


def table(*rows: tuple[object, ...]) -> ResultTable:
    return ResultTable(columns=COLUMNS, rows=rows, kinds=KINDS)  # type: ignore[arg-type]


def test_only_changed_columns_one_line_per_key_paired_whatever_the_order() -> None:
    before = table((42, "shipped", "1234.50", "a"), (43, "shipped", "10", None), (44, "pending", "7", "x"))
    after = table((44, "cancelled", "7", "x"), (42, "cancelled", "0", "a"), (43, "cancelled", "10", None))
    diff = row_diff(before, after, keys=("id",), rows_affected=3)
    assert diff is not None and diff.lines == (
        "id 44: status pending → cancelled",
        "id 42: status shipped → cancelled, total 1,234.50 → 0",
        "id 43: status shipped → cancelled",
    ) and diff.note == ""


def test_more_rows_than_shown_are_counted() -> None:
    before = table(*((i, "new", "1", None) for i in range(8)))
    after = table(*((i, "old", "1", None) for i in range(8)))
    diff = row_diff(before, after, keys=("id",), rows_affected=300)
    assert diff is not None and len(diff.lines) == 5 and diff.note == "showing 5 of 300 rows"


def test_null_the_text_null_and_empty_text_stay_distinguishable() -> None:
    before = table((1, None, "1", ""), (2, "NULL", "1", " x"))
    after = table((1, "NULL", "1", "y"), (2, None, "1", "x"))
    diff = row_diff(before, after, keys=("id",))
    assert diff is not None and diff.lines == (
        "id 1: status — → NULL, note '' → y",
        "id 2: status NULL → —, note ' x' → x",
    )


def test_hostile_values_are_flattened_and_cut() -> None:
    long = "line one\nline two " + "z" * 200
    diff = row_diff(table((1, "a", "1", "b")), table((1, long, "1", "b")), keys=("id",))
    assert diff is not None and len(diff.lines) == 1
    line = diff.lines[0]
    assert "\n" not in line and line.startswith("id 1: status a → line one line two z") and line.endswith("…")


def test_without_a_primary_key_rows_pair_on_the_columns_the_change_does_not_set() -> None:
    before = table((1, "shipped", "5", "a"), (2, "shipped", "6", "b"))
    after = table((2, "cancelled", "6", "b"), (1, "cancelled", "5", "a"))
    diff = row_diff(before, after, set_columns=("status",))
    assert diff is not None and diff.lines == ("id 2: status shipped → cancelled", "id 1: status shipped → cancelled")
    assert row_diff(before, after) is None  # nothing to pair on: the card shows the preview instead


def test_rows_that_would_not_change_are_said() -> None:
    same = table((1, "a", "1", None))
    diff = row_diff(same, same, keys=("id",))
    assert diff is not None and diff.lines == () and diff.note == "1 row would not change"


def test_the_question_names_statement_rows_and_table() -> None:
    def ask(kind: str, rows: int | None, tables: tuple[str, ...] = ("customers",), plain: bool = True) -> str:
        return approval_question(statement_type=kind, rows=rows, tables=tables, database="shop",
                                 summary="BACKUP of 'shop': 12 tables, ~1 MB", plain_sql=plain)

    assert ask("UpdateStmt", 3) == "Approve: UPDATE 3 rows in customers?"
    assert ask("InsertStmt", 1) == "Approve: INSERT 1 row into customers?"
    assert ask("DeleteStmt", 1200) == "Approve: DELETE 1,200 rows from customers?"
    assert ask("AlterTableStmt", None) == "Approve: ALTER TABLE on customers?"
    assert ask("DoStmt", None, ()) == "Approve: DO block on shop?"
    assert ask("BACKUP", None, plain=False) == "Approve: BACKUP of 'shop': 12 tables, ~1 MB?"


def test_who_may_approve_leaves_the_requester_out_and_names_the_rest() -> None:
    settings = DatabaseSettings.model_validate({
        "dsn": "postgresql://x@localhost/db",
        "roles": {"slack:U1": "dba", "discord-role:77": "dba", "slack:U9": "analyst", "*": "readonly"},
        "approvers": {"users": ["slack:U2", "slack:UREQ", "discord:5"], "roles": ["dba"]},
    })
    approvers = approvers_of(settings, requested_by="slack:UREQ")
    assert approvers.people == ("slack:U2", "discord:5") and approvers.role_holders == ("slack:U1", "discord-role:77")

    def slack(key: str) -> str | None:
        return f"<@{key[6:]}>" if key.startswith("slack:") else None

    assert who_may_approve(approvers, name=slack) == (
        "<@U2>, anyone with database role dba (<@U1>) or 1 approver on another platform")
    nobody = approvers_of(DatabaseSettings.model_validate({"dsn": "postgresql://x@localhost/db"}), requested_by="x")
    assert who_may_approve(nobody, name=slack) == "nobody yet (no approvers are configured)"
    selfish = DatabaseSettings.model_validate({"dsn": "postgresql://x@localhost/db", "approvers": {
        "users": ["slack:UREQ"], "allow_self_approval": True}})
    assert approvers_of(selfish, requested_by="slack:UREQ").people == ("slack:UREQ",)


def test_state_lines() -> None:
    def line(state: CardState, elapsed: float | None = None) -> str:
        return state_text(state, name=lambda who: f"@{who}", clock=lambda at: f"T{int(at)}", elapsed_s=elapsed)

    assert line(CardState(CardStatus.PENDING, at=100)) == "🔒 Waiting for approval · expires T100"
    assert line(CardState(CardStatus.RUNNING, by="x")) == "⏳ Approved by @x — running"
    assert line(CardState(CardStatus.RUNNING, by="x", detail="building index: 45%"), 75) == (
        "⏳ Approved by @x — running: building index: 45% · 1 min 15 s")
    assert line(CardState(CardStatus.APPLIED, by="x", detail="UPDATE 3", duration_ms=12)) == (
        "✅ Applied: UPDATE 3 in 12 ms — approved by @x")
    assert line(CardState(CardStatus.REJECTED, by="y")) == "🚫 Rejected by @y"
    assert line(CardState(CardStatus.FAILED, by="x", detail="deadlock detected.")) == (
        "❌ Failed: deadlock detected (nothing changed) — approved by @x")
    assert line(CardState(CardStatus.FAILED, by="x", detail="boom", nothing_changed=False)).startswith(
        "❌ Failed: boom (it ran outside a transaction")
    assert line(CardState(CardStatus.EXPIRED, at=1405)) == "⌛ Expired T1405"
    assert len(line(CardState(CardStatus.FAILED, detail="e" * 5000))) < 400


def test_clarification_options_people_may_click() -> None:
    hostile = ["before refunds", "before  refunds", "/sql DROP TABLE items", "x" * 81, "", "after\nrefunds",
               "a", "b", "c", "d"]
    assert clarification_choices(hostile) == ("before refunds", "after refunds", "a", "b", "c")
    assert clarification_choices("not a list") == () and clarification_choices(None) == ()


def test_phases_people_read() -> None:
    assert tool_phase("run_query", database="shop") == "running the query on shop"
    assert tool_phase("some_plugin_tool", database="shop") == "using some_plugin_tool"
    assert command_phase("/sql SELECT 1", database="shop") == "running the query on shop"
    assert command_phase("/weird" + "x" * 100, database="shop") == "running /weirdxxxxxxxxxxxxxx"

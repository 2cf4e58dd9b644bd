"""Undo of an approved change against real Postgres roles and the real Redis (core.undo).

Each test checks what people are told and what the database holds afterwards.
"""

from __future__ import annotations

import asyncio

import asyncpg

from core import Reply, ReplyKind
from core.agent.loop import Agent
from core.config import UndoSettings
from tests.helpers import final_reply, message
from tests.integration.change_env import ANALYST, DBA, LEAD, OTHER, ChangeEnv, change_env_fixture  # noqa: F401 - fixture

THREAD = "t-undo"
WHERE = message("", thread=THREAD).thread_key


async def propose(agent: Agent, sql: str, *, user: str = "UANALYST") -> Reply:
    reply = await final_reply(agent, message(f"/sql {sql}", user=user, thread=THREAD))
    assert reply.kind is ReplyKind.APPROVAL and reply.approval is not None, reply.text
    return reply


async def run_approved(agent: Agent, sql: str) -> Reply:
    reply = await propose(agent, sql)
    assert reply.approval is not None
    outcome = await agent.decide(action_id=reply.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME, outcome.text
    return outcome


async def undo_and_approve(agent: Agent, change_id: str, *, by: str = ANALYST) -> Reply:
    pending = await agent.undo(action_id=change_id, user=by, thread_key=WHERE)
    assert pending.kind is ReplyKind.APPROVAL and pending.approval is not None, pending.text
    done = await agent.decide(action_id=pending.approval.action_id, decided_by=DBA, approve=True)
    assert done.kind is ReplyKind.OUTCOME, done.text
    return done


async def items(env: ChangeEnv) -> dict[int, tuple[str, int]]:
    return {r["id"]: (r["name"], r["qty"]) for r in await env.fetch("SELECT id, name, qty FROM items")}


async def test_update_round_trip(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    before = await items(env)
    reply = await propose(agent, "UPDATE items SET qty = qty * 10, name = upper(name) WHERE id IN (2, 4)")
    assert "Undo: once it runs, pgbot keeps the rows" in reply.text
    assert reply.approval is not None and not any("cannot be undone" in n for n in reply.approval.notes)
    outcome = await agent.decide(action_id=reply.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME and outcome.undo_id == reply.approval.action_id, outcome.text
    assert "UPDATE 2" in outcome.text and "kept the 2 rows it changed" in outcome.text
    assert (await items(env))[2] == ("ITEM 2", 20)
    done = await undo_and_approve(agent, outcome.undo_id or "")
    assert "put back 2 of 2 rows of public.items" in done.text and done.undo_id is None
    assert await items(env) == before


def agent_with(env: ChangeEnv, **undo: object) -> Agent:
    settings = env.settings()
    return env.agent(settings.model_copy(update={"undo": UndoSettings(**undo)}))  # type: ignore[arg-type]


async def as_admin(env: ChangeEnv, sql: str) -> None:
    conn = await asyncpg.connect(env.dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_delete_round_trip_keeps_every_column(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    before = await env.fetch("SELECT * FROM items ORDER BY id")
    outcome = await run_approved(agent, "DELETE FROM items WHERE id > 7")
    assert "DELETE 3" in outcome.text and outcome.undo_id
    done = await undo_and_approve(agent, outcome.undo_id)
    assert "put back 3 of 3 rows" in done.text
    assert await env.fetch("SELECT * FROM items ORDER BY id") == before  # created_by too, not the undo's role


async def test_insert_round_trip(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "INSERT INTO items (id, name) VALUES (50, 'a'), (51, 'b')")
    assert "INSERT 0 2" in outcome.text and outcome.undo_id
    done = await undo_and_approve(agent, outcome.undo_id)
    assert "put back 2 of 2 rows" in done.text
    assert await env.fetchval("SELECT count(*) FROM items WHERE id >= 50") == 0


async def test_rows_changed_in_between_are_skipped_and_listed(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "UPDATE items SET qty = 0 WHERE id IN (1, 2, 3)")
    await as_admin(env, "UPDATE items SET qty = 99 WHERE id = 2; DELETE FROM items WHERE id = 3")
    pending = await agent.undo(action_id=outcome.undo_id or "", user=ANALYST, thread_key=WHERE)
    assert pending.kind is ReplyKind.APPROVAL and pending.approval is not None, pending.text
    assert "put back 1 of 3 rows" in pending.text
    assert "id=2 (changed since)" in pending.text and "id=3 (deleted since)" in pending.text
    assert pending.table is not None and ("id=2", "changed since") in pending.table.rows
    done = await agent.decide(action_id=pending.approval.action_id, decided_by=DBA, approve=True)
    assert "put back 1 of 3 rows" in done.text and "id=2 (changed since)" in done.text
    assert (await items(env))[1][1] == 1 and (await items(env))[2][1] == 99  # someone's later edit is kept
    assert 3 not in await items(env)


async def test_a_deleted_row_whose_key_came_back_is_skipped(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "DELETE FROM items WHERE id IN (9, 10)")
    await as_admin(env, "INSERT INTO items (id, name) VALUES (10, 'someone else''s')")
    done = await undo_and_approve(agent, outcome.undo_id or "")
    assert "put back 1 of 2 rows" in done.text and "id=10 (a row with this key" in done.text
    assert (await items(env))[10] == ("someone else's", 0) and (await items(env))[9] == ("item 9", 9)


async def test_nothing_left_to_undo_creates_no_pending_change(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "UPDATE items SET qty = 0 WHERE id = 1")
    await as_admin(env, "UPDATE items SET qty = 5 WHERE id = 1")
    reply = await agent.undo(action_id=outcome.undo_id or "", user=ANALYST, thread_key=WHERE)
    assert reply.kind is ReplyKind.INFO and "Nothing to undo" in reply.text and "id=1 (changed since)" in reply.text
    assert await env.fetchval("SELECT undo_action_id FROM pgbot.undo WHERE action_id = $1", outcome.undo_id) is None


async def test_over_the_row_bound_the_card_says_so_and_no_button_follows(change_env: ChangeEnv) -> None:
    env = change_env
    agent = agent_with(env, max_rows=2)
    reply = await propose(agent, "UPDATE items SET qty = 0 WHERE id <= 3")
    assert reply.approval is not None
    assert ("This change cannot be undone: it would change 3 rows, over the 2 an undo keeps ([undo] max_rows)."
            in reply.approval.notes)
    assert "Undo:" not in reply.text
    outcome = await agent.decide(action_id=reply.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME and outcome.undo_id is None
    assert "This change cannot be undone: it changes 3 rows" not in outcome.text  # said before, by the card
    asked = await final_reply(agent, message(f"/undo {reply.approval.action_id}", user="UANALYST", thread=THREAD))
    assert "cannot be undone: it would change 3 rows" in asked.text
    within = await run_approved(agent, "UPDATE items SET qty = 0 WHERE id <= 2")
    assert within.undo_id is not None


async def test_over_the_byte_bound_the_card_says_so(change_env: ChangeEnv) -> None:
    env = change_env
    agent = agent_with(env, max_bytes=1024)
    reply = await propose(agent, "UPDATE items SET name = repeat('x', 1200) WHERE id = 1")
    assert reply.approval is not None
    note = next(n for n in reply.approval.notes if "cannot be undone" in n)
    assert "bytes, over the 1024 an undo keeps ([undo] max_bytes)" in note
    outcome = await agent.decide(action_id=reply.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.undo_id is None and (await items(env))[1][0] == "x" * 1200


async def test_two_clicks_make_one_pending_undo_and_two_approvals_run_it_once(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "UPDATE items SET qty = qty + 1000 WHERE id IN (5, 6)")
    clicks = await asyncio.gather(*(agent.undo(action_id=outcome.undo_id or "", user=who, thread_key=WHERE)
                                    for who in (ANALYST, ANALYST, OTHER, ANALYST, OTHER)))
    pending = [c for c in clicks if c.kind is ReplyKind.APPROVAL]
    assert len(pending) == 1, [c.text for c in clicks]
    assert all("already waits for approval" in c.text or "at the same moment" in c.text or "being prepared"
               in c.text for c in clicks if c.kind is not ReplyKind.APPROVAL)
    undo_id = pending[0].approval.action_id if pending[0].approval else ""
    again = await agent.undo(action_id=outcome.undo_id or "", user=OTHER, thread_key=WHERE)
    assert f"already waits for approval: change {undo_id}" in again.text
    decided = await asyncio.gather(*(agent.decide(action_id=undo_id, decided_by=who, approve=True)
                                     for who in (DBA, DBA, DBA)))
    assert [d.kind for d in decided].count(ReplyKind.OUTCOME) == 1, [d.text for d in decided]
    assert (await items(env))[5][1] == 5 and (await items(env))[6][1] == 6
    assert await env.audit_events(undo_id) == ["requested", "approved", "executed"]
    later = await agent.undo(action_id=outcome.undo_id or "", user=ANALYST, thread_key=WHERE)
    assert later.kind is ReplyKind.INFO and "already undone (approved by slack:UDBA" in later.text


async def test_a_rejected_undo_frees_the_change_for_a_new_click(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "UPDATE items SET qty = 0 WHERE id = 7")
    first = await agent.undo(action_id=outcome.undo_id or "", user=ANALYST, thread_key=WHERE)
    assert first.approval is not None
    rejected = await agent.decide(action_id=first.approval.action_id, decided_by=DBA, approve=False)
    assert rejected.kind is ReplyKind.OUTCOME
    second = await agent.undo(action_id=outcome.undo_id or "", user=ANALYST, thread_key=WHERE)
    assert second.approval is not None and second.approval.action_id != first.approval.action_id
    await agent.decide(action_id=second.approval.action_id, decided_by=DBA, approve=True)
    assert (await items(env))[7][1] == 7


async def test_undo_expired(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "UPDATE items SET qty = 0 WHERE id = 8")
    pending = await agent.undo(action_id=outcome.undo_id or "", user=ANALYST, thread_key=WHERE)
    assert pending.approval is not None
    await as_admin(env, "UPDATE pgbot.undo SET valid_until = clock_timestamp() - interval '1 second'")
    late = await agent.decide(action_id=pending.approval.action_id, decided_by=DBA, approve=True)
    assert late.kind is ReplyKind.ERROR and "expired at" in late.text and (await items(env))[8][1] == 0
    click = await agent.undo(action_id=outcome.undo_id or "", user=ANALYST, thread_key=WHERE)
    assert click.kind is ReplyKind.INFO and "expired at" in click.text and "valid_for_s" in click.text


async def test_undo_approval_follows_the_same_rules(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "UPDATE items SET qty = 0 WHERE id = 4")
    pending = await agent.undo(action_id=outcome.undo_id or "", user=LEAD, thread_key=WHERE)
    assert pending.approval is not None
    assert pending.approval.role == env.analyst and pending.approval.requested_by == LEAD  # the change's role
    for who, why in ((OTHER, "cannot approve"), (LEAD, "you requested this change"), (ANALYST, "cannot approve")):
        refused = await agent.decide(action_id=pending.approval.action_id, decided_by=who, approve=True)
        assert refused.kind is ReplyKind.ERROR and why in refused.text, refused.text
    assert (await items(env))[4][1] == 0
    done = await agent.decide(action_id=pending.approval.action_id, decided_by=DBA, approve=True)
    assert done.kind is ReplyKind.OUTCOME and (await items(env))[4][1] == 4


async def test_who_may_ask_for_an_undo(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "INSERT INTO notes (id, body) VALUES (1, 'x')")
    assert outcome.undo_id
    cannot_read = await agent.undo(action_id=outcome.undo_id, user=OTHER, thread_key=WHERE)
    assert cannot_read.kind is ReplyKind.ERROR and "cannot read public.notes" in cannot_read.text
    stranger = await agent.undo(action_id=outcome.undo_id, user="slack:USTRANGER", thread_key=WHERE)
    assert stranger.kind is ReplyKind.ERROR and stranger.approval is None
    elsewhere = await agent.undo(action_id=outcome.undo_id, user=ANALYST, thread_key="slack:T1:C1:other")
    assert elsewhere.kind is ReplyKind.ERROR and "another conversation" in elsewhere.text
    for hostile in ("", "x", "../../etc", "'; DROP TABLE items; --", "a" * 65, "nosuchchangeid123"):
        refused = await agent.undo(action_id=hostile, user=ANALYST, thread_key=WHERE)
        assert refused.kind is ReplyKind.ERROR and "no change with that id" in refused.text, hostile
    assert await env.fetchval("SELECT count(*) FROM notes") == 1


async def test_ddl_has_no_undo_and_undo_says_why(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "CREATE TABLE scratch (id int)")
    assert outcome.undo_id is None and "undo" not in outcome.text.lower()
    change = outcome.action_id
    asked = await final_reply(agent, message(f"/undo {change}", user="UANALYST", thread=THREAD))
    assert "changed the schema" in asked.text and "pgbot migrate down" in asked.text
    bare = await final_reply(agent, message("/undo", user="UANALYST", thread=THREAD))
    assert "no change in this thread that pgbot can undo" in bare.text


async def test_tables_that_cannot_be_undone_say_so_on_the_card(change_env: ChangeEnv) -> None:
    env = change_env
    grant = f'TO "{env.analyst}"'
    await as_admin(env, f"""
        CREATE TABLE nokey (a int, b text); INSERT INTO nokey VALUES (1, 'x');
        CREATE TABLE owners (id int PRIMARY KEY);
        CREATE TABLE pets (id int PRIMARY KEY, owner int REFERENCES owners ON DELETE CASCADE);
        INSERT INTO owners VALUES (1); INSERT INTO pets VALUES (1, 1);
        GRANT SELECT, INSERT, UPDATE, DELETE ON nokey, owners, pets {grant};
        GRANT UPDATE ON secrets {grant}""")
    agent = env.agent()
    cases = {
        "UPDATE nokey SET b = 'y'": "public.nokey has no primary key",
        "DELETE FROM owners WHERE id = 1": "also changes pets (ON DELETE CASCADE)",
        "UPDATE items SET id = id + 100 WHERE id = 1": "it changes the key of public.items (id)",
        "UPDATE secrets SET secret = 'x' WHERE true": "may change public.secrets but not read it",
        "UPDATE items SET qty = 1 WHERE id = 1 RETURNING id": "RETURNING clause of its own",
        "INSERT INTO items (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET qty = 5": "ON CONFLICT DO UPDATE",
    }
    for sql, why in cases.items():
        reply = await propose(agent, sql)
        assert reply.approval is not None
        assert any(n.startswith("This change cannot be undone:") and why in n for n in reply.approval.notes), (
            sql, reply.approval.notes)
    outcome = await run_approved(agent, "UPDATE nokey SET b = 'y'")
    assert outcome.undo_id is None and await env.fetchval("SELECT b FROM nokey") == "y"


async def test_composite_keys_and_columns_without_equality(change_env: ChangeEnv) -> None:
    env = change_env
    await as_admin(env, f"""
        CREATE TABLE sales (region text, day date, amount numeric(10,2), doc json, spot point, tags text[],
                            total numeric GENERATED ALWAYS AS (amount * 2) STORED, PRIMARY KEY (region, day));
        INSERT INTO sales VALUES ('EU', '2024-01-01', 1.50, '{{"a" : 1,  "a": 2}}', '(1,2)', '{{x,y}}'),
                                 ('US', '2024-01-01', 2.00, '[1.50, 2]', '(0,0)', NULL),
                                 ('EU', '2024-01-02', 3.00, 'null', NULL, '{{}}');
        GRANT SELECT, INSERT, UPDATE, DELETE ON sales TO "{env.analyst}";
    """)
    agent = env.agent()
    before = await env.fetch("SELECT *, doc::text AS raw FROM sales ORDER BY region, day")
    updated = await run_approved(agent, "UPDATE sales SET amount = amount + 1, doc = '{}' WHERE region = 'EU'")
    deleted = await run_approved(agent, "DELETE FROM sales WHERE region = 'US'")
    await as_admin(env, "UPDATE sales SET doc = '{\"b\": 1}' WHERE day = '2024-01-02'")  # json: compared as text
    done = await undo_and_approve(agent, updated.undo_id or "")
    assert "put back 1 of 2 rows" in done.text and "(region, day)=('EU', '2024-01-02') (changed since)" in done.text
    await undo_and_approve(agent, deleted.undo_id or "")
    after = await env.fetch("SELECT *, doc::text AS raw FROM sales ORDER BY region, day")
    assert after[0] == before[0] and after[2] == before[2]  # the json text exactly, duplicate keys and spaces
    assert after[0]["raw"] == '{"a" : 1,  "a": 2}' and after[1]["raw"] == '{"b": 1}'


async def test_kept_rows_altered_after_the_card_are_refused(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    outcome = await run_approved(agent, "UPDATE items SET qty = 0 WHERE id = 3")
    pending = await agent.undo(action_id=outcome.undo_id or "", user=ANALYST, thread_key=WHERE)
    assert pending.approval is not None
    await as_admin(env, "UPDATE pgbot.undo SET before_rows = ARRAY['{\"id\":3,\"name\":\"evil\",\"qty\":1,"
                        "\"created_by\":\"x\"}']")
    refused = await agent.decide(action_id=pending.approval.action_id, decided_by=DBA, approve=True)
    assert refused.kind is ReplyKind.ERROR and "not the ones this undo showed" in refused.text
    assert (await items(env))[3] == ("item 3", 0)


async def test_a_table_with_triggers_says_what_an_undo_does_not_cover(change_env: ChangeEnv) -> None:
    env = change_env
    await as_admin(env, """
        CREATE TABLE item_log (id serial PRIMARY KEY, item int);
        CREATE FUNCTION log_item() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS
          $$ BEGIN INSERT INTO item_log (item) VALUES (NEW.id); RETURN NEW; END $$;
        CREATE TRIGGER items_logged AFTER UPDATE ON items FOR EACH ROW EXECUTE FUNCTION log_item();""")
    agent = env.agent()
    reply = await propose(agent, "UPDATE items SET qty = 0 WHERE id = 1")
    assert "Triggers on the table (items_logged) run again with an undo" in reply.text
    assert reply.approval is not None
    outcome = await agent.decide(action_id=reply.approval.action_id, decided_by=DBA, approve=True)
    await undo_and_approve(agent, outcome.undo_id or "")
    assert (await items(env))[1][1] == 1 and await env.fetchval("SELECT count(*) FROM item_log") == 2

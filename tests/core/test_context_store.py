"""Redis and in-memory context stores pass the same suite (Redis: the real server, and fakeredis).

fakeredis runs the same contract against a second Redis implementation (the store must rely only on Redis'
documented semantics, not on one server's quirks), and plays a Redis that stops answering mid-conversation,
which a shared real server cannot do without stopping it for every other test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import fakeredis
import pytest
import redis.asyncio as aioredis

from core.errors import ContextUnavailableError
from core.llm.base import ChatTurn, ReadScope, ToolCall
from core.threads.context import (
    ContextStore,
    MemoryContextStore,
    RedisContextStore,
    trim_history,
)
from core.threads.history_scope import withheld_marker
from tests.services import delete_keys, store_client

DBA = ReadScope(database="shop", role="dba")
READER = ReadScope(database="shop", role="readonly")
SALARIES = "name,salary\nAlice,123456\nBob,98765"


@pytest.fixture(params=["memory", "redis", "fakeredis"])
async def store(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[ContextStore]:
    if request.param == "memory":
        yield MemoryContextStore(ttl_s=60, max_turns=6)
        return
    if request.param == "fakeredis":
        fake = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)
        yield RedisContextStore(fake, ttl_s=60, max_turns=6)
        await fake.aclose()
        return
    prefix = f"pgbot:test:{uuid.uuid4().hex}"
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield RedisContextStore(client, ttl_s=60, max_turns=6, prefix=prefix)
    await delete_keys(redis_url, f"{prefix}:*")
    await client.aclose()


def user(text: str, read_as: tuple[ReadScope, ...] = (DBA,)) -> ChatTurn:
    return ChatTurn(role="user", content=text, read_as=read_as)


def dba_turn() -> list[ChatTurn]:
    """A DBA's question, the salaries they read, and an answer quoting them."""
    return [
        user("salaries?"),
        ChatTurn(role="assistant", content="", read_as=(DBA,),
                 tool_calls=(ToolCall(id="c1", name="run_query", arguments='{"sql": "SELECT * FROM salaries"}'),)),
        ChatTurn(role="tool", tool_call_id="c1", name="run_query", content=SALARIES, read_as=(DBA,)),
        ChatTurn(role="assistant", content="Alice earns 123456.", read_as=(DBA,)),
    ]


async def test_history_round_trips_with_tool_calls(store: ContextStore) -> None:
    turns = [
        user("how many orders?"),
        ChatTurn(role="assistant", content="", read_as=(DBA,),
                 tool_calls=(ToolCall(id="c1", name="run_query", arguments='{"sql": "SELECT 1"}'),)),
        ChatTurn(role="tool", tool_call_id="c1", name="run_query", content="count\n3", read_as=(DBA,)),
        ChatTurn(role="assistant", content="3 orders.", read_as=(DBA,)),
    ]
    await store.append("t1", turns)
    assert await store.history("t1", viewer=DBA) == turns
    assert await store.history("other", viewer=DBA) == []
    assert await store.has_history("t1") and not await store.has_history("other")


async def test_another_roles_results_never_come_back_out(store: ContextStore) -> None:
    await store.append("s1", dba_turn())
    assert await store.history("s1", viewer=DBA) == dba_turn()  # the DBA's follow-up keeps its own rows
    for viewer in (READER, ReadScope(database="hr", role="dba"), ReadScope(database="shop", role=None)):
        seen = await store.history("s1", viewer=viewer)
        text = "".join(t.model_dump_json() for t in seen)
        assert "123456" not in text and "98765" not in text and "Alice" not in text, viewer
        assert [t.role for t in seen] == ["user", "assistant", "tool", "assistant"]  # pairing intact
        assert seen[0].content == "salaries?"  # questions stay
        assert seen[1].tool_calls[0].arguments == '{"sql": "SELECT * FROM salaries"}'  # SQL stays
        assert seen[1].tool_calls[0].id == seen[2].tool_call_id
        assert seen[2].content == withheld_marker((DBA,))


async def test_history_from_before_scopes_is_foreign_to_everyone(store: ContextStore) -> None:
    legacy = [ChatTurn(role="user", content="salaries?"), ChatTurn(role="tool", tool_call_id="x", content=SALARIES),
              ChatTurn(role="assistant", content="Alice earns 123456.")]
    await store.append("s2", legacy)
    for viewer in (DBA, READER):
        seen = await store.history("s2", viewer=viewer)
        assert seen[0].content == "salaries?"
        assert all("123456" not in (t.content or "") for t in seen)


async def test_history_is_trimmed_at_a_user_turn(store: ContextStore) -> None:
    for i in range(5):
        await store.append("t2", [user(f"q{i}"), ChatTurn(role="tool", tool_call_id="x", content="r", read_as=(DBA,)),
                                  ChatTurn(role="assistant", content=f"a{i}", read_as=(DBA,))])
    history = await store.history("t2", viewer=DBA)
    assert len(history) <= 6
    assert history[0].role == "user"
    assert history[-1].content == "a4"


async def test_database_choice_is_per_thread(store: ContextStore) -> None:
    assert await store.get_database("t3") is None
    await store.set_database("t3", "analytics")
    assert await store.get_database("t3") == "analytics"
    assert await store.get_database("t4") is None


async def test_concurrent_appends_lose_nothing(store: ContextStore) -> None:
    await asyncio.gather(*(store.append("t5", [user(f"m{i}")]) for i in range(6)))
    history = await store.history("t5", viewer=DBA)
    assert sorted(t.content or "" for t in history) == [f"m{i}" for i in range(6)]


async def test_redis_keys_carry_a_ttl(redis_url: str) -> None:
    prefix = f"pgbot:test:{uuid.uuid4().hex}"
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisContextStore(client, ttl_s=120, max_turns=10, prefix=prefix)
    try:
        await store.append("t", [user("hi")])
        await store.set_database("t", "db")
        for key in [k async for k in client.scan_iter(f"{prefix}:*")]:
            assert 0 < await client.ttl(key) <= 120
            await client.delete(key)
    finally:
        await client.aclose()


async def test_redis_down_is_a_clear_error() -> None:
    store = RedisContextStore(store_client("redis://127.0.0.1:9/0"), ttl_s=60, max_turns=4)
    with pytest.raises(ContextUnavailableError, match="context store"):
        await store.history("t", viewer=DBA)
    with pytest.raises(ContextUnavailableError, match="context store"):
        await store.has_history("t")
    await store.aclose()


async def test_redis_that_stops_answering_mid_thread_is_a_clear_error_and_loses_nothing() -> None:
    """Every call, the pipelined ones too, says "context store" (never a Redis traceback) while Redis is gone;
    once it answers again the thread is as it was: nothing half-written, nothing lost."""
    server = fakeredis.FakeServer()
    client = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
    store = RedisContextStore(client, ttl_s=60, max_turns=6)
    try:
        await store.append("t", dba_turn())
        await store.set_database("t", "shop")
        server.connected = False
        calls = [store.history("t", viewer=DBA), store.has_history("t"), store.load("t"),
                 store.append("t", [user("lost?")]), store.get_database("t"), store.set_database("t", "hr")]
        for call in calls:
            with pytest.raises(ContextUnavailableError, match="context store") as caught:
                await call
            assert "123456" not in str(caught.value)  # the thread's rows never ride along in the error
        server.connected = True
        assert await store.history("t", viewer=DBA) == dba_turn()
        name, stored = await store.load("t")
        assert name == "shop" and stored.visible_to(DBA) == dba_turn()  # neither "lost?" nor "hr" landed
    finally:
        await client.aclose()


def test_trim_drops_orphaned_tool_results() -> None:
    turns = [ChatTurn(role="tool", tool_call_id="a", content="x"), ChatTurn(role="assistant", content="y"), user("z")]
    assert trim_history(turns, 10) == [user("z")]


async def test_load_reads_the_database_and_the_history_together(store: ContextStore) -> None:
    """One round trip for both; the history yields turns only through a viewer (per-role history)."""
    own = ReadScope(database="analytics", role="analyst")
    name, stored = await store.load("t5")
    assert name is None and not stored and stored.visible_to(own) == []
    await store.set_database("t5", "analytics")
    turns = [ChatTurn(role="user", content="how many?", read_as=(own,)),
             ChatTurn(role="assistant", content="3", read_as=(own,))]
    await store.append("t5", turns)
    name, stored = await store.load("t5")
    assert name == "analytics" and stored.visible_to(own) == turns
    other = stored.visible_to(ReadScope(database="analytics", role="readonly"))
    assert other[0].content == "how many?" and "3" not in (other[1].content or "")  # the answer is withheld
    name, stored = await store.load("t6")
    assert name is None and not stored

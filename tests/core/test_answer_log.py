"""Memory and Redis answer logs pass the same suite (Redis: the real server and fakeredis; no Lua is involved).

An answer's record waits for its 👍/👎, Export or Chart click: recalled by id, the thread's newest one found,
both gone after the TTL; with Redis, an outage is a clear FeedbackUnavailableError.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import fakeredis
import pytest

from core.errors import FeedbackUnavailableError
from core.prompt.feedback import AnswerLog, AnswerRecord, MemoryAnswerLog, RedisAnswerLog
from tests.helpers import eventually
from tests.services import delete_keys, store_client

TTL_S = 1  # the shortest TTL Redis keeps (EX takes whole seconds)


@pytest.fixture(params=["memory", "redis", "fakeredis"])
async def answers(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[AnswerLog]:
    log: AnswerLog
    prefix = f"pgbot:test:{uuid.uuid4().hex}:answer"
    if request.param == "memory":
        log = MemoryAnswerLog(ttl_s=TTL_S)
    elif request.param == "fakeredis":
        log = RedisAnswerLog(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True),
                             ttl_s=TTL_S)
    else:
        log = RedisAnswerLog(store_client(redis_url), ttl_s=TTL_S, prefix=prefix)
    yield log
    await log.aclose()
    await delete_keys(redis_url, f"{prefix}:*")


def record(thread: str, *, question: str = "how many orders?") -> AnswerRecord:
    return AnswerRecord(answer_id=uuid.uuid4().hex, database="shop", question=question,
                        sql=("SELECT count(*) FROM orders", "SELECT 1"), thread_key=thread, asked_by="slack:U1",
                        table_sql="SELECT count(*) FROM orders")


async def test_a_record_round_trips_and_the_threads_newest_is_found(answers: AnswerLog) -> None:
    first, second, elsewhere = record("t1"), record("t1", question="and yesterday? ✓"), record("t2")
    for each in (first, second, elsewhere):
        await answers.remember(each)
    assert await answers.recall(first.answer_id) == first  # an older answer keeps its buttons
    assert await answers.recall(second.answer_id) == second
    assert await answers.last_in_thread("t1") == second
    assert await answers.last_in_thread("t2") == elsewhere
    assert await answers.recall(uuid.uuid4().hex) is None
    assert await answers.last_in_thread("never") is None


async def test_records_expire_with_their_ttl(answers: AnswerLog) -> None:
    kept = record("t3")
    await answers.remember(kept)
    assert await answers.last_in_thread("t3") == kept

    async def gone() -> bool:
        return await answers.recall(kept.answer_id) is None and await answers.last_in_thread("t3") is None

    await eventually(gone, what="the record to expire", within_s=5)


async def test_redis_that_stops_answering_is_a_clear_error() -> None:
    server = fakeredis.FakeServer()
    log = RedisAnswerLog(fakeredis.FakeAsyncRedis(server=server, decode_responses=True), ttl_s=60)
    kept = record("t")
    try:
        await log.remember(kept)
        server.connected = False
        for call in (log.remember(record("t")), log.recall(kept.answer_id), log.last_in_thread("t")):
            with pytest.raises(FeedbackUnavailableError):
                await call
        server.connected = True
        assert await log.last_in_thread("t") == kept  # the failed write left nothing behind
    finally:
        await log.aclose()

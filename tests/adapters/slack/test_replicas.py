"""Two replicas side by side: two bolt apps in HTTP mode on their own ports, two Agents, one Redis.

A burst of 50 questions over 5 threads, each event delivered twice (the second time as Slack's retry, with
X-Slack-Retry-Num) to a random replica: every question is answered exactly once, each thread's answers come
in the order its questions arrived, and each turn saw every earlier turn of its thread in its history.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.wiring import build_agent
from core import Agent
from tests import llm_server as llm
from tests.adapters.slack.fake_slack import BOT_USER_ID, FakeSlack, app_mention, event_body, new_ts, signed_headers
from tests.adapters.slack.fake_slack import slack_settings as fake_slack_settings
from tests.adapters.slack.test_runner import post_when_up, running
from tests.helpers import settings_for
from tests.services import delete_keys, free_port

THREADS = 5
PER_THREAD = 10
QUESTION = re.compile(r"q-(\d+)-(\d+)")


def ask_text(request: dict[str, Any]) -> str:
    users = [m["content"] for m in request["messages"] if m["role"] == "user"]
    return str(users[-1])


async def answer(request: dict[str, Any]) -> llm.Reply:
    """The answer names its question, after a short think (so turns of one thread pile up across replicas)."""
    found = QUESTION.search(ask_text(request))
    assert found is not None
    return llm.delay(random.uniform(0.005, 0.03), llm.text(f"answer to q-{found.group(1)}-{found.group(2)}"))


@pytest.fixture
async def replicas(fresh_db: str, redis_url: str, fake_slack: FakeSlack) -> AsyncIterator[tuple[list[str], Any]]:
    server = llm.ScriptedLlmServer(responder=answer)
    await server.start()
    agents: list[Agent] = []
    urls: list[str] = []
    try:
        async with _replica(fresh_db, server.base_url, redis_url, fake_slack, agents, urls), \
                _replica(fresh_db, server.base_url, redis_url, fake_slack, agents, urls):
            yield urls, server
    finally:
        for agent in agents:
            await agent.aclose()
        await server.stop()


def _replica(dsn: str, llm_url: str, redis_url: str, fake: FakeSlack, agents: list[Agent],
             urls: list[str]) -> Any:
    settings = settings_for(dsn, llm_url=llm_url, redis_url=redis_url)
    agent = build_agent(settings)
    agents.append(agent)
    port = free_port()
    urls.append(f"http://127.0.0.1:{port}/slack/events")
    return running(agent, fake_slack_settings(fake, mode="http", http_port=port))


async def deliver(url: str, body: str, *, retry: int = 0) -> None:
    headers = signed_headers(body, content_type="application/json")
    if retry:
        headers |= {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"}
    status, _ = await post_when_up(url, body, headers)
    assert status == 200


def posts_in(fake: FakeSlack, thread_ts: str) -> int:
    return sum(1 for c in fake.of("chat.postMessage") if c.args.get("thread_ts") == thread_ts)


async def test_burst_over_two_replicas_keeps_order_and_answers_each_event_once(
    fake_slack: FakeSlack, replicas: tuple[list[str], Any], redis_url: str
) -> None:
    urls, server = replicas
    roots = [new_ts() for _ in range(THREADS)]
    duplicates: list[asyncio.Task[None]] = []
    stamps: list[str] = []

    async def thread(t: int) -> None:
        for k in range(PER_THREAD):
            ts = roots[t] if k == 0 else new_ts()
            stamps.append(ts)
            event = app_mention(f"<@{BOT_USER_ID}> q-{t}-{k}", ts=ts, thread_ts=None if k == 0 else roots[t])
            body = event_body(event)
            first = random.randrange(2)
            await deliver(urls[first], body)
            # A question has arrived once its "working" message is up (it holds its place in the line by then).
            await fake_slack.wait_for(lambda f, t=t, k=k: posts_in(f, roots[t]) == k + 1)
            other = 1 - first if random.random() < 0.75 else first
            delay = random.uniform(0, 0.1)
            duplicates.append(asyncio.create_task(_later(delay, deliver(urls[other], body, retry=1))))

    await asyncio.gather(*(thread(t) for t in range(THREADS)))
    await asyncio.gather(*duplicates)

    def answered() -> list[tuple[int, int]]:
        out = []
        for call in fake_slack.of("chat.update"):
            found = re.search(r"answer to q-(\d+)-(\d+)", json.dumps(call.args))
            if found:
                out.append((int(found.group(1)), int(found.group(2))))
        return out

    await fake_slack.wait_for(lambda f: len(answered()) >= THREADS * PER_THREAD, within_s=30)
    await fake_slack.handled()
    got = answered()
    assert sorted(got) == [(t, k) for t in range(THREADS) for k in range(PER_THREAD)]  # each exactly once
    for t in range(THREADS):
        assert [k for tt, k in got if tt == t] == list(range(PER_THREAD))  # in arrival order
        assert posts_in(fake_slack, roots[t]) == PER_THREAD  # no extra "working" for the redeliveries
    assert len(server.requests) == THREADS * PER_THREAD  # the model was asked each question once
    for request in server.requests:
        found = QUESTION.search(ask_text(request))
        assert found is not None
        t, k = int(found.group(1)), int(found.group(2))
        earlier = [m["content"] for m in request["messages"] if m["role"] == "user"][:-1]
        # each turn ran after the previous one of its thread had finished and saved its history
        assert [QUESTION.search(q).group(0) for q in earlier] == [f"q-{t}-{j}" for j in range(k)]  # type: ignore[union-attr]
    await delete_keys(redis_url, *(f"pgbot:*{stamp}*" for stamp in stamps))


async def _later(delay: float, work: Any) -> None:
    await asyncio.sleep(delay)
    await work

"""Shared fixtures: real PostgreSQL, real Redis, a scripted OpenAI-compatible server; a clean environment."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.services import find_or_start_postgres, find_or_start_redis, throwaway_database

_PG_DSN, _PG_SERVER = None, None


@pytest.fixture(autouse=True, scope="session")
def clean_environ() -> Iterator[None]:
    """No PGBOT_* setting or OpenAI key leaks in from the developer's shell; real LLM calls are impossible."""
    keep = {"PGBOT_TEST_DSN", "PGBOT_REDIS_URL"}
    saved = dict(os.environ)
    for key in list(os.environ):
        if (key.startswith("PGBOT_") and key not in keep) or key.startswith("OPENAI_") or key.startswith("SLACK_") \
                or key.startswith("DISCORD_"):
            del os.environ[key]
    os.environ["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1-real-llm-calls-are-disabled-in-tests"
    os.environ["PGBOT_HISTORY_FILE"] = os.devnull
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    dsn, server = find_or_start_postgres()
    yield dsn
    if server is not None:
        server.cleanup()  # type: ignore[attr-defined]


@pytest.fixture
async def fresh_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A new, empty database for one test; dropped afterwards."""
    async with throwaway_database(pg_admin_dsn, prefix="pgbot_test") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url, proc = find_or_start_redis()
    yield url
    if proc is not None:
        proc.kill()


@pytest.fixture(autouse=True)
def fresh_tool_modes() -> None:
    """Auto tool mode remembers per endpoint and model for the process; each test starts undecided."""
    from core.llm.openai_client import forget_tool_modes

    forget_tool_modes()


@pytest.fixture
async def llm_server() -> AsyncIterator[object]:
    from tests.llm_server import ScriptedLlmServer

    server = ScriptedLlmServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fake_slack() -> AsyncIterator[object]:
    """A local stand-in for Slack's Web API that records every call (tests/adapters/slack/fake_slack.py)."""
    from tests.adapters.slack.fake_slack import FakeSlack

    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()

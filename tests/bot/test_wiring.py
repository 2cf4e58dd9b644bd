"""make_llm: a blank ``${OPENAI_API_KEY}`` (docker-compose.yml's default) means "no model", not an OpenAI client."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.wiring import make_llm
from core import Settings
from core.config import load_settings
from tests.integration.test_cli import run_pgbot


@pytest.mark.parametrize("value", ["", "  "])
def test_blank_key_from_the_environment_is_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     value: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", value)
    path = tmp_path / "pgbot.toml"
    path.write_text('[llm]\napi_key = "${OPENAI_API_KEY}"\n', encoding="utf-8")
    assert make_llm(load_settings(path)) is None


async def test_a_real_key_or_a_base_url_still_makes_a_client(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-wiring")
    path = tmp_path / "pgbot.toml"
    path.write_text('[llm]\napi_key = "${OPENAI_API_KEY}"\n', encoding="utf-8")
    for settings in (load_settings(path), Settings(llm={"base_url": "http://127.0.0.1:9/v1"})):
        llm = make_llm(settings)
        assert llm is not None
        await llm.aclose()


async def test_ask_with_the_compose_config_and_no_key_says_what_to_set(tmp_path: Path, fresh_db: str) -> None:
    """deploy/pgbot.toml's `api_key = "${OPENAI_API_KEY}"` with the variable unset, as `docker compose run`."""
    path = tmp_path / "pgbot.toml"
    path.write_text(f'[llm]\napi_key = "${{OPENAI_API_KEY}}"\n\n[databases.shop]\ndsn = "{fresh_db}"\n',
                    encoding="utf-8")
    started = time.monotonic()
    code, out, err = await run_pgbot("ask", "how many orders?", "--config", str(path), home=tmp_path)
    assert "No language model is configured" in out + err and "OPENAI_API_KEY" in out + err
    assert code != 0
    assert time.monotonic() - started < 30  # answered at once, not after an LLM timeout

r"""Optional, slow: one question end to end against a real llama.cpp server (``llama_cpp.server``).

Not in the default run (marker ``slow``). To run it::

    pip install 'llama-cpp-python[server]'          # compiles llama.cpp: about five minutes on 2 cores
    PGBOT_TEST_GGUF=/models/qwen2.5-1.5b-instruct-q4_k_m.gguf \
        python -m pytest -m slow tests/integration/test_llama_cpp.py

Any small instruct model works; the base URL is given without ``/v1`` and ``tool_mode`` is "auto", so the
run also exercises base-URL normalisation, tool-support detection and tool calls written as text.

With ``../shared/tools/local-llm.sh setup`` done, nothing needs setting: the model and the server's Python are
taken from its cache (``$LLM_HOME``, default ``~/.cache/pgbot-local-llm``), so ``./scripts/test.sh -m slow`` runs
this against Qwen2.5-Coder-1.5B-Instruct. ``PGBOT_TEST_LLAMA_PYTHON`` names another Python with llama-cpp-python.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.wiring import build_agent
from core import ReplyKind
from tests.helpers import final_reply, load_shop, message, settings_for
from tests.services import free_port

pytestmark = pytest.mark.slow

# Read at import: the session fixture that cleans the environment runs after collection.
LLM_HOME = Path(os.environ.get("LLM_HOME") or Path.home() / ".cache" / "pgbot-local-llm")
_INSTALLED = LLM_HOME / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"  # what local-llm.sh setup assembles
GGUF = os.environ.get("PGBOT_TEST_GGUF", "") or (str(_INSTALLED) if _INSTALLED.is_file() else "")
_CACHED_PYTHON = LLM_HOME / "venv" / "bin" / "python"
SERVER_PYTHON = os.environ.get("PGBOT_TEST_LLAMA_PYTHON", "") or (
    str(_CACHED_PYTHON) if _CACHED_PYTHON.is_file() else sys.executable)
STARTUP_S = 300


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not GGUF:
        pytest.skip("run ../shared/tools/local-llm.sh setup, or set PGBOT_TEST_GGUF to a .gguf model file, to run "
                    "the llama.cpp end-to-end test")
    if not Path(GGUF).is_file():
        pytest.fail(f"PGBOT_TEST_GGUF={GGUF} is not a file")
    found = subprocess.run([SERVER_PYTHON, "-c", "import llama_cpp.server"], capture_output=True, check=False)
    if found.returncode != 0:
        pytest.fail(f"llama-cpp-python is not installed for {SERVER_PYTHON}: pip install 'llama-cpp-python[server]'")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [SERVER_PYTHON, "-m", "llama_cpp.server", "--model", GGUF, "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", "8192"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited ({proc.returncode}):\n{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/v1/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server did not answer within {STARTUP_S} s")
            time.sleep(1)
        yield base  # no /v1: pgbot adds it
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_a_question_end_to_end_on_llama_cpp(llama_server: str, fresh_db: str) -> None:
    await load_shop(fresh_db)
    settings = settings_for(fresh_db, llm_url=llama_server)
    settings.llm.tool_mode = "auto"
    settings.llm.timeout_s = 600
    settings.llm.model = Path(GGUF).stem
    agent = build_agent(settings)
    try:
        reply = await final_reply(agent, message("How many orders are there in total? Use the orders table."))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER, reply.text
    assert reply.sql, f"the model answered without running SQL: {reply.text}"
    assert (reply.table is not None and reply.table.rows == ((90,),)) or "90" in reply.text, reply

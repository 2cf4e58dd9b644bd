"""The benchmark runner end to end, offline: real Postgres, the scripted HTTP model, the real agent.

Smoke mode must score 100% for both systems (the scripted model answers with the reference SQL), and a
model that answers wrongly must be scored wrong: together they show the runner measures something.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.quality.questions import load_questions, select
from bench.quality.report import format_report
from bench.quality.runner import run_benchmark
from bench.quality.smoke import reference_responder
from core.config import Settings
from core.llm.openai_client import OpenAIClient
from tests.llm_server import JsonObject, Reply, ScriptedLlmServer, text, tool_call

ROOT = Path(__file__).resolve().parents[2]
IDS = ["count_customers", "orders_last_month", "customers_without_country", "latest_reviews", "top5_products_by_units"]


def llm_settings(base_url: str) -> Settings:
    return Settings(llm={"base_url": base_url, "api_key": "sk-bench", "model": "scripted", "max_retries": 0,
                         "timeout_s": 10, "tool_mode": "native"})


async def test_smoke_run_scores_both_systems_perfectly(pg_admin_dsn: str) -> None:
    questions = select(load_questions(), only=IDS)
    async with ScriptedLlmServer(responder=reference_responder(questions)) as server:
        settings = llm_settings(server.base_url)
        report = await run_benchmark(settings=settings, llm=OpenAIClient(settings.llm), questions=questions,
                                     admin_dsn=pg_admin_dsn, smoke=True, endpoint="scripted")
    assert report.score("pgbot") == (5, 5) and report.score("baseline") == (5, 5)
    agent_requests = [r for r in server.requests if r.get("tools")]
    assert len(agent_requests) == 10  # a tool call and an answer per question
    assert all(report.outcomes[("pgbot", i)].tokens > 0 for i in IDS)
    printed = format_report(report)
    assert re.search(r"execution accuracy\s+5/5 \(100%\)\s+5/5 \(100%\)", printed), printed
    assert "relative-date" in printed and "orders_last_month" in printed


async def test_wrong_answers_are_scored_wrong(pg_admin_dsn: str) -> None:
    questions = select(load_questions(), only=["count_customers", "count_cancelled_orders"])

    def respond(request: JsonObject) -> Reply:
        if request.get("tools"):
            last = request["messages"][-1]  # type: ignore[index]
            if last["role"] == "tool":
                return text("Done.")
            return tool_call("run_query", {"sql": "SELECT count(*) FROM orders"})  # wrong for both questions
        return text("I would rather not write SQL today.")  # the baseline gives no SQL at all

    async with ScriptedLlmServer(responder=respond) as server:
        settings = llm_settings(server.base_url)
        report = await run_benchmark(settings=settings, llm=OpenAIClient(settings.llm), questions=questions,
                                     admin_dsn=pg_admin_dsn)
    assert report.score("pgbot") == (0, 2) and report.score("baseline") == (0, 2)
    assert {o.status for (s, _), o in report.outcomes.items() if s == "pgbot"} == {"wrong"}
    assert {o.status for (s, _), o in report.outcomes.items() if s == "baseline"} == {"no-sql"}


def test_command_line_smoke_run(pg_admin_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.quality", "--smoke", "--quiet", "--only", "count_customers,orders_last_month",
         "--admin-dsn", pg_admin_dsn, "--disable", "value_hints", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"execution accuracy\s+2/2 \(100%\)\s+2/2 \(100%\)", proc.stdout), proc.stdout
    assert "techniques off: value_hints" in proc.stdout
    data = json.loads(out.read_text())
    assert data["scores"] == {"pgbot": {"correct": 2, "total": 2}, "baseline": {"correct": 2, "total": 2}}
    assert data["smoke"] is True and len(data["outcomes"]) == 4


def test_command_line_refuses_bad_arguments(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args, message in ((["--smoke", "--only", "no_such_question"], "unknown question id"),
                          (["--smoke", "--disable", "telepathy"], "unknown system or technique"),
                          ([], "no model endpoint")):
        proc = subprocess.run([sys.executable, "-m", "bench.quality", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr

"""How much of each model request repeats the previous one's prefix, and how big each request is.

    ./scripts/bench.sh prompt_cache [--limit N] [--json PATH] [--per-request]

Runs the quality bench's 58 questions through pgbot's real agent against the scripted OpenAI-compatible
server (offline smoke mode: the "model" answers with the reference SQL, so every question takes a
``run_query`` call and a prose answer), records every request the server received, and renders each one as
the token stream a llama.cpp server would build from it: the Qwen2.5 chat template (ChatML, the tools as
JSON lines inside the system turn). For each request it reports the prompt tokens and how many of them are
a repeat of the previous request's prefix, which llama.cpp reuses instead of processing again (OpenAI's
prompt caching likewise discounts only an identical prefix, of 1,024 tokens or more).

Tokens are counted without a model's vocabulary (none is installable offline): the text is split with the
Qwen2 pre-tokenizer pattern (letter runs with one leading non-letter, single digits, punctuation runs,
whitespace), and each piece counts as one token. A BPE tokenizer never merges across these pieces, so this
is a lower bound of the true count (close to it for English, SQL and JSON, whose words are mostly single
tokens); the shares are ratios of counts made the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import admin_dsn, machine

# Qwen2's pre-tokenizer, with \p{L} as [^\W\d_] and \p{N} as \d (Python's re has no Unicode classes).
_PIECE = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|(?:[^\r\n\w]|_)?[^\W\d_]+|\d| ?(?:[^\s\w]|_)+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_TOOLS_HEAD = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}'
    "\n</tool_call>"
)


def pieces(text: str) -> list[str]:
    """The text as pre-tokens (see the module docstring)."""
    return _PIECE.findall(text)


def render(request: dict[str, object]) -> str:
    """One chat completion request as the Qwen2.5 chat template lays it out for the model."""
    messages = [m for m in request.get("messages", []) if isinstance(m, dict)]  # type: ignore[union-attr]
    tools = [t for t in request.get("tools", []) or [] if isinstance(t, dict)]  # type: ignore[union-attr]
    out: list[str] = []
    start = 0
    system = ""
    if messages and messages[0].get("role") == "system":
        system, start = str(messages[0].get("content") or ""), 1
    if tools:
        lines = "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)
        out.append(f"<|im_start|>system\n{system}{_TOOLS_HEAD}{lines}{_TOOLS_TAIL}<|im_end|>\n")
    elif start:
        out.append(f"<|im_start|>system\n{system}<|im_end|>\n")
    previous = ""
    for m in messages[start:]:
        role, content = str(m.get("role")), str(m.get("content") or "")
        if role == "tool":
            opening = "" if previous == "tool" else "<|im_start|>user"
            out.append(f"{opening}\n<tool_response>\n{content}\n</tool_response>")
        else:
            if previous == "tool":
                out.append("<|im_end|>\n")
            body = content
            for call in m.get("tool_calls") or []:  # type: ignore[attr-defined]
                fn = call.get("function", {})
                call_json = f'{{"name": "{fn.get("name")}", "arguments": {fn.get("arguments")}}}'
                body += f"\n<tool_call>\n{call_json}\n</tool_call>"
            out.append(f"<|im_start|>{role}\n{body}<|im_end|>\n")
        previous = role
    if previous == "tool":
        out.append("<|im_end|>\n")
    out.append("<|im_start|>assistant\n")
    return "".join(out)


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True, slots=True)
class RequestFigures:
    index: int
    question: int  # 1-based question number this request belongs to
    step: int  # 1 = the question's first call
    tokens: int
    reused: int  # tokens equal to the previous request's prefix
    tool_tokens: int  # the tool definitions alone (JSON lines)
    tools: int

    @property
    def share(self) -> float:
        return self.reused / self.tokens if self.tokens else 0.0


def measure(requests: Sequence[dict[str, object]]) -> list[RequestFigures]:
    figures: list[RequestFigures] = []
    previous: list[str] = []
    question = step = 0
    for index, request in enumerate(requests):
        messages = request.get("messages", [])
        last = messages[-1] if isinstance(messages, list) and messages else {}
        if isinstance(last, dict) and last.get("role") == "user" and not _follows_clarification(messages):
            question, step = question + 1, 1
        else:
            step += 1
        tokens = pieces(render(request))
        tools = [t for t in request.get("tools", []) or [] if isinstance(t, dict)]  # type: ignore[union-attr]
        tool_tokens = len(pieces("".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)))
        figures.append(RequestFigures(index + 1, question, step, len(tokens), common_prefix(previous, tokens),
                                      tool_tokens, len(tools)))
        previous = tokens
    return figures


def _follows_clarification(messages: object) -> bool:
    """The benchmark's "use the most common interpretation" reply continues a question, not a new one."""
    return isinstance(messages, list) and len(messages) > 2 and any(
        isinstance(m, dict) and m.get("role") == "assistant" for m in messages
    )


def summary(figures: Sequence[RequestFigures]) -> dict[str, float]:
    later = [f for f in figures if f.question >= 2]
    firsts = [f for f in figures if f.step == 1]
    later_firsts = [f for f in later if f.step == 1]
    total = sum(f.tokens for f in later)
    return {
        "requests": len(figures),
        "questions": max((f.question for f in figures), default=0),
        "mean_tokens_per_call": statistics.fmean(f.tokens for f in figures) if figures else 0.0,
        "mean_tokens_first_call": statistics.fmean(f.tokens for f in firsts) if firsts else 0.0,
        "mean_tool_tokens": statistics.fmean(f.tool_tokens for f in figures) if figures else 0.0,
        "mean_tools_offered": statistics.fmean(f.tools for f in figures) if figures else 0.0,
        "reused_share_q2_on": sum(f.reused for f in later) / total if total else 0.0,
        "reused_share_first_calls_q2_on": (
            sum(f.reused for f in later_firsts) / sum(f.tokens for f in later_firsts) if later_firsts else 0.0
        ),
        "min_share_q2_on": min((f.share for f in later), default=0.0),
        "new_tokens_q2_on": float(sum(f.tokens - f.reused for f in later)),
    }


async def run(*, limit: int | None = None, per_request: bool = False, json_path: Path | None = None
              ) -> dict[str, float]:
    from bench.quality.questions import load_questions, select
    from bench.quality.runner import run_benchmark
    from bench.quality.smoke import reference_responder
    from bot.logs import configure_logging
    from core.config import Settings
    from core.llm.openai_client import OpenAIClient
    from tests.llm_server import ScriptedLlmServer

    configure_logging(Settings(), level="warning", stream=sys.stderr)  # keep stdout for the figures
    questions = select(load_questions(), limit=limit)
    async with ScriptedLlmServer(responder=reference_responder(questions)) as server:
        settings = Settings(llm={"base_url": server.base_url, "api_key": "sk-bench", "model": "scripted",
                                 "max_retries": 0, "timeout_s": 30, "tool_mode": "native"})
        report = await run_benchmark(settings=settings, llm=OpenAIClient(settings.llm), questions=questions,
                                     systems=("pgbot",), admin_dsn=admin_dsn(), smoke=True, endpoint="scripted")
    correct, total = report.score("pgbot")
    figures = measure([r for r in server.requests if r.get("tools")])
    result = summary(figures)
    if per_request:
        print("request  question  step  tokens  reused  share  tools(tokens)")
        for f in figures:
            print(f"{f.index:7d}  {f.question:8d}  {f.step:4d}  {f.tokens:6,d}  {f.reused:6,d}  {f.share:5.0%}  "
                  f"{f.tools}({f.tool_tokens:,d})")
    print(f"Prompt reuse over {result['questions']:.0f} questions, {result['requests']:.0f} requests "
          f"({correct}/{total} answered right) — {machine()}")
    print(f"  prompt tokens per call, mean:                 {result['mean_tokens_per_call']:,.0f}")
    print(f"  prompt tokens of a question's first call:     {result['mean_tokens_first_call']:,.0f}")
    print(f"  tools offered per call / their tokens:        {result['mean_tools_offered']:.1f} / "
          f"{result['mean_tool_tokens']:,.0f}")
    print(f"  share repeating the previous prefix, q2 on:   {result['reused_share_q2_on']:.1%} "
          f"(first calls only: {result['reused_share_first_calls_q2_on']:.1%}; lowest: "
          f"{result['min_share_q2_on']:.1%})")
    print(f"  tokens to process anew, q2 on:                {result['new_tokens_q2_on']:,.0f}")
    if json_path is not None:
        payload = json.dumps({"summary": result, "requests": [asdict(f) for f in figures]}, indent=1)
        await asyncio.to_thread(json_path.write_text, payload, encoding="utf-8")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="the first N questions only")
    parser.add_argument("--per-request", action="store_true", help="one line per request")
    parser.add_argument("--json", type=Path, help="write every request's figures here")
    args = parser.parse_args()
    asyncio.run(run(limit=args.limit, per_request=args.per_request, json_path=args.json))


if __name__ == "__main__":
    main()

"""The scripted LLM server as its own process for benchmarks: prints its base URL, serves until killed.

    python -m bench.llm_stub --delay 1.0

Each chat completion waits ``--delay`` seconds, then answers: a ``run_query`` tool call when the last
message is the user's, the final prose answer once a tool result is back. A separate process so the
server's CPU is not counted as pgbot's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests import llm_server as llm

QUESTION_SQL = "SELECT count(*) AS shipped FROM orders WHERE status = 'shipped'"
ANSWER = "30 orders have shipped."


def responder(delay_s: float) -> llm.Responder:
    def respond(request: llm.JsonObject) -> llm.Reply:
        messages = request.get("messages") or []
        last = messages[-1] if isinstance(messages, list) and messages else {}
        if isinstance(last, dict) and last.get("role") == "tool":
            return llm.DelayedReply(delay_s, llm.text(ANSWER))
        return llm.DelayedReply(delay_s, llm.tool_call("run_query", {"sql": QUESTION_SQL}))

    return respond


async def serve(delay_s: float) -> None:
    server = llm.ScriptedLlmServer(responder=responder(delay_s))
    print(await server.start(), flush=True)
    try:
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin (or kills us)
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=1.0)
    asyncio.run(serve(parser.parse_args().delay))


if __name__ == "__main__":
    main()

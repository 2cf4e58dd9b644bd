"""Offline smoke mode: the scripted OpenAI-compatible server plays a model that knows every reference query.

For pgbot's agent it calls ``run_query`` with the reference SQL and then answers in a sentence; for the
baseline it replies with the reference SQL in a fenced block. Both should then score 100%: a lower score
means the runner, the comparison, the guard, EXPLAIN or a reference query is broken, not the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.quality.questions import Question
from tests.llm_server import JsonObject, Reply, Responder, question_of, sql_block, text, tool_call


def reference_responder(questions: Sequence[Question]) -> Responder:
    by_text = {q.question: q.sql for q in questions}

    def respond(request: JsonObject) -> Reply:
        messages = request.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else {}
        role = last.get("role") if isinstance(last, dict) else None
        content = last.get("content") if isinstance(last, dict) else None
        if request.get("tools"):
            if role == "tool":
                return text("The result is in the table.")
            sql = by_text.get(question_of(content))
            return tool_call("run_query", {"sql": sql}) if sql else text("I do not know this question.")
        sql = by_text.get(str(content))
        return sql_block(sql) if sql else text("I do not know this question.")

    return respond

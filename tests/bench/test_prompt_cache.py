"""The prompt-reuse benchmark on a few questions: the figures docs/QUALITY.md records, held as goals."""

from __future__ import annotations

import pytest

from bench.prompt_cache import common_prefix, pieces, render, run


async def test_later_questions_reuse_most_of_the_previous_prompt(pg_admin_dsn: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGBOT_TEST_DSN", pg_admin_dsn)
    result = await run(limit=4)
    assert result["requests"] == 8 and result["questions"] == 4
    assert result["reused_share_first_calls_q2_on"] >= 0.8  # the system message and the tools repeat
    assert result["mean_tools_offered"] == 5  # read questions: the read set
    assert result["mean_tokens_first_call"] < 2300  # half of the 4,181 before issue 14, with some slack


def test_the_rendering_puts_tools_in_the_system_turn_and_counts_a_prefix() -> None:
    request = {"messages": [{"role": "system", "content": "rules"}, {"role": "user", "content": "how many?"}],
               "tools": [{"type": "function", "function": {"name": "run_query"}}]}
    text = render(request)  # type: ignore[arg-type]
    assert text.startswith("<|im_start|>system\nrules\n\n# Tools") and '"name": "run_query"' in text
    assert text.endswith("<|im_start|>user\nhow many?<|im_end|>\n<|im_start|>assistant\n")
    a, b = pieces("SELECT count(*) FROM orders"), pieces("SELECT count(*) FROM order_items")
    assert a[:3] == ["SELECT", " count", "(*)"] and common_prefix(a, b) == len(a) - 1

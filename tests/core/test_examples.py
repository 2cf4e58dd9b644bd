"""Ranking 👍 question/SQL pairs for a new question (pure)."""

from __future__ import annotations

from core.prompt.examples import rank, render, similarity, words
from core.prompt.feedback import Example

PAIRS = [
    Example("How many orders shipped last month?", "SELECT count(*) FROM orders WHERE status = 'shipped'", 1),
    Example("Top 5 customers by revenue", "SELECT c.name FROM customers c ORDER BY 1 LIMIT 5", 3),
    Example("Average rating per product", "SELECT product_id, avg(rating) FROM reviews GROUP BY 1", 1),
]


def test_words_drop_stopwords_and_plurals() -> None:
    assert words("How many Orders were shipped in the categories?") == {"order", "ship", "category"}


def test_similar_question_ranks_first_and_unrelated_ones_are_dropped() -> None:
    ranked = rank("how many orders were shipped this week", PAIRS, limit=3)
    assert [r.example for r in ranked] == [PAIRS[0]]
    assert rank("list the employees hired in 2020", PAIRS, limit=3) == []


def test_numbers_alone_never_make_a_match() -> None:
    assert similarity(words("top 5"), words("5 stars")) == 0.0
    assert similarity(words("orders in the last 7 days"), words("orders in the last 30 days")) > 0.3


def test_limit_and_tie_break_by_votes() -> None:
    twins = [Example("revenue by customer", "SELECT 1", 1), Example("revenue by customer", "SELECT 2", 5)]
    ranked = rank("revenue by customer", twins, limit=1)
    assert [r.example.sql for r in ranked] == ["SELECT 2"]


def test_render_cuts_huge_sql() -> None:
    text = render(rank("revenue by customer", [Example("revenue by customer", "SELECT " + "x, " * 2000, 1)], limit=1))
    assert text.startswith("Q: revenue by customer\nSQL: SELECT") and text.endswith(" …") and len(text) < 1700

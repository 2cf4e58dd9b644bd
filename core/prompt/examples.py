"""Examples for the prompt: question/SQL pairs the team marked right, most similar to the new question.

Ranking is word overlap (a weighted Jaccard of light-stemmed words without stopwords), computed in Python:
no extension is needed in the user's database, it is deterministic and takes microseconds for the few
hundred candidates kept per database. A pair must share a real word with the question to be shown at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from core.errors import PgbotError
from core.prompt.feedback import Example
from core.prompt.ranking import stem
from core.prompt.ranking import words as split_words
from core.sqlguard import SqlGuard

MIN_SCORE = 0.2
MAX_EXAMPLE_CHARS = 1500  # one example's SQL, so a huge query cannot crowd out the schema

_STOPWORD_TEXT = """
a an the of in on for to by with and or is are was were be been how many much what which who whom whose when
where why show me list give get find tell all each every per from that this these those there their they we
our us i my you your do does did have has had it its as at than then not no any some can could would should
please about so if
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class RankedExample:
    example: Example
    score: float


def words(text: str) -> set[str]:
    """The question's stemmed content words (shared stemming with schema ranking)."""
    return {stem(word) for word in split_words(text) if word not in _STOPWORDS}


def similarity(a: set[str], b: set[str]) -> float:
    """Jaccard overlap; numbers count half (\"last 7 days\" vs \"last 30 days\" is still the same question)."""
    if not a or not b:
        return 0.0

    def weight(items: set[str]) -> float:
        return sum(0.5 if w.isdigit() else 1.0 for w in items)

    shared = a & b
    if not any(not w.isdigit() for w in shared):
        return 0.0
    return weight(shared) / weight(a | b)


_GUARD = SqlGuard()


def rank(question: str, candidates: Sequence[Example], *, limit: int, min_score: float = MIN_SCORE,
         readable: Collection[str] | None = None) -> list[RankedExample]:
    """The ``limit`` best candidates scoring at least ``min_score``; ties go to more 👍, then newer.

    With ``readable`` (the table names the asking role can read, see :func:`readable_names`), an example
    whose SQL names any other table is skipped: examples are shared by everyone on a database, and a
    restricted user's prompt must not show SQL about tables their role cannot see."""
    asked = words(question)
    scored = [RankedExample(c, similarity(asked, words(c.question))) for c in candidates]
    chosen = [r for r in scored if r.score >= min_score]
    chosen.sort(key=lambda r: (-r.score, -r.example.votes))  # stable: candidates come newest first
    if readable is None:
        return chosen[:limit]
    allowed: list[RankedExample] = []
    for ranked in chosen:  # parse only as many as needed: the best few usually pass
        if len(allowed) == limit:
            break
        if only_reads(ranked.example.sql, readable):
            allowed.append(ranked)
    return allowed


def only_reads(sql: str, readable: Collection[str]) -> bool:
    """Whether every relation ``sql`` names is in ``readable``; SQL that does not parse is not shown."""
    try:
        tables = _GUARD.classify(sql).tables
    except PgbotError:
        return False
    return all(table in readable for table in tables)


def render(examples: Sequence[RankedExample]) -> str:
    blocks = []
    for r in examples:
        sql = r.example.sql if len(r.example.sql) <= MAX_EXAMPLE_CHARS else r.example.sql[:MAX_EXAMPLE_CHARS] + " …"
        question = " ".join(r.example.question.split())[:500]
        blocks.append(f"Q: {question}\nSQL: {sql}")
    return "\n\n".join(blocks)

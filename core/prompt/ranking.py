"""Which tables a question is about: identifier-aware keyword ranking over names, columns and comments.

Why not embeddings: no model download, no per-question network call, microseconds per question on 5,000
tables, and deterministic results that tests can pin. Identifiers are split the way people write them
(``order_items``, ``OrderItems``, ``orders2019``), words are reduced to a light singular stem, and a
question word matches a catalog word exactly, by prefix (``ship`` ~ ``shipment``), through a small list of
business synonyms, or, for typos, by trigram similarity (the pg_trgm measure, computed here so no
extension is needed in the user's database). Rare words weigh more (IDF); a word in a table's name weighs
more than one in a column or a comment; a table whose whole name the question mentions gets a bonus.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

_WORD_RE = re.compile(r"[^\W_]+")
_CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")

_STOP_TEXT = """
a an the of in on for to by with and or is are was were be been being how many much what which who whom whose
when where why show me list give get find tell all each every per from that this these those there their they
we our us i my you your do does did have has had it its as at than then most more less least top not no any
some between over under into out up down can could would should please about did done make made want need
let lets also only just like same other others one ones them him her his she he so if else use using via
"""
STOPWORDS = frozenset(_STOP_TEXT.split())

# Generic business English only: domain words belong in the schema's own names and comments.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "client": ("customer",), "customer": ("client", "buyer"), "buyer": ("customer",),
    "staff": ("employee",), "employee": ("staff", "worker"), "worker": ("employee",), "personnel": ("employee",),
    "product": ("item", "sku"), "item": ("product",), "sku": ("product",),
    "purchase": ("order",), "order": ("purchase",),
    "revenue": ("sale", "amount", "income"), "sale": ("revenue",), "income": ("revenue",),
    "salary": ("pay", "wage", "compensation"), "pay": ("salary", "payment"), "wage": ("salary",),
    "user": ("account", "member"), "member": ("user",), "account": ("user",),
    "ticket": ("issue", "case"), "issue": ("ticket",),
    "invoice": ("bill",), "bill": ("invoice",),
    "shipment": ("delivery",), "delivery": ("shipment",),
    "vendor": ("supplier",), "supplier": ("vendor",),
    "spend": ("cost", "expense"), "expense": ("cost", "spend"), "cost": ("expense",),
}

NAME_WEIGHT = 3.0
SCHEMA_WEIGHT = 0.8
COMMENT_WEIGHT = 1.0
COLUMN_WEIGHT = 1.0
COLUMN_COMMENT_WEIGHT = 0.4
COVERAGE_BONUS = 3.0  # times the share of the table's name words the question mentions
PREVIOUS_WEIGHT = 0.4  # earlier questions in the thread: follow-ups ("and by month?") keep their tables
SECOND_FIELD_SHARE = 0.25
MIN_AFFIX = 4  # shorter words match exactly only ("cat" must not match "category")
# A prefix match must end in a real English suffix: ship ~ shipment, pay ~ payment, but count !~ country.
SUFFIXES = frozenset(("s", "es", "ed", "d", "ing", "er", "ers", "or", "ors", "ee", "ees", "ment", "ments", "ion",
                      "ions", "ation", "ations", "al", "ly", "ity", "ness", "ive", "age", "ance", "ence", "ship", "y"))


def words(text: str) -> list[str]:
    """Lower-case words of identifiers and prose: snake_case, camelCase, digits and unicode split apart."""
    out: list[str] = []
    for chunk in _WORD_RE.findall(text):
        out.extend(part.lower() for part in _CAMEL_RE.split(chunk) if part)
    return out


_DOUBLED = re.compile(r"([bdfgkmnprt])\1$")  # shipp → ship; bill and buzz keep theirs


def stem(word: str) -> str:
    """A light English singular/base form: ``categories``→``category``, ``shipped``→``ship``."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "uses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if word.endswith("ed") and len(word) > 5:
        return _DOUBLED.sub(r"\1", word[:-2])
    if word.endswith("ing") and len(word) > 5:
        return _DOUBLED.sub(r"\1", word[:-3])
    return word


def terms(text: str) -> list[str]:
    """Stemmed, stopword-free words of ``text``, in order."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def trigrams(word: str) -> set[str]:
    """pg_trgm's trigrams: the word padded with two spaces before and one after."""
    padded = f"  {word} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


@dataclass(frozen=True, slots=True)
class TableDoc:
    """What the ranker knows about one table."""

    schema: str
    name: str
    comment: str = ""
    columns: tuple[str, ...] = ()
    column_comments: tuple[str, ...] = ()
    links: int = 0  # foreign keys in and out: a tie-break towards central tables


class TableIndex:
    """An inverted index over table documents; :meth:`rank` scores every table for a question."""

    def __init__(self, docs: Iterable[TableDoc], *, steps: bool = False) -> None:
        """Index ``docs`` now, or, with ``steps=True``, when :meth:`build` is iterated (see there)."""
        self.docs = list(docs)
        self._postings: dict[str, dict[int, float]] = {}
        self._name_terms: list[tuple[str, ...]] = []
        self._idf: dict[str, float] = {}
        self._vocab: list[str] = []
        self._trigrams: dict[str, set[str]] | None = None
        self._prior: list[float] = []
        self._central: list[int] | None = None
        if not steps:
            for _ in self.build():
                pass

    def build(self, *, chunk: int = 250) -> Iterator[None]:
        """Index the documents, yielding after every ``chunk`` of them.

        Why a generator: a 5,000-table schema takes tens of milliseconds to index; the caller can give the
        event loop a turn between chunks instead of blocking it (a worker thread would fight the loop for
        the GIL instead).
        """
        postings: dict[str, dict[int, float]] = defaultdict(dict)
        for i, doc in enumerate(self.docs):
            name_terms = tuple(dict.fromkeys(terms(doc.name)))
            self._name_terms.append(name_terms or (doc.name.lower(),))
            fields = (
                (name_terms or (doc.name.lower(),), NAME_WEIGHT),
                (terms(doc.schema), SCHEMA_WEIGHT),
                (terms(doc.comment), COMMENT_WEIGHT),
                (terms(" ".join(doc.columns)), COLUMN_WEIGHT),
                (terms(" ".join(doc.column_comments)), COLUMN_COMMENT_WEIGHT),
            )
            per_term: dict[str, list[float]] = defaultdict(list)
            for field_terms, weight in fields:
                for term in set(field_terms):
                    per_term[term].append(weight)
            for term, found in per_term.items():
                # The best field counts; others add a little. Clutter such as a comment "Copy of
                # sales.orders" must not outweigh the table actually named orders.
                postings[term][i] = max(found) + SECOND_FIELD_SHARE * (sum(found) - max(found))
            if i % chunk == chunk - 1:
                yield
        self._postings = dict(postings)
        n = max(len(self.docs), 1)
        self._idf = {t: math.log(1 + n / len(p)) for t, p in self._postings.items()}
        self._vocab = sorted(self._postings)
        self._prior = [0.05 * math.log1p(d.links) for d in self.docs]

    def __len__(self) -> int:
        return len(self.docs)

    def _fuzzy(self, word: str) -> dict[str, float]:
        if self._trigrams is None:  # built on first typo only
            index: dict[str, set[str]] = defaultdict(set)
            for term in self._vocab:
                if len(term) >= MIN_AFFIX:
                    for g in trigrams(term):
                        index[g].add(term)
            self._trigrams = dict(index)
        mine = trigrams(word)
        shared: dict[str, int] = defaultdict(int)
        for g in mine:
            for term in self._trigrams.get(g, ()):
                shared[term] += 1
        out: dict[str, float] = {}
        for term, common in shared.items():
            similarity = common / (len(mine) + len(trigrams(term)) - common)
            if similarity >= 0.45:
                out[term] = 0.6 * similarity
        return out

    def expand(self, word: str) -> dict[str, float]:
        """Catalog words a question word matches, each with a factor (1.0 exact … 0.3 weak)."""
        found: dict[str, float] = {}

        def add(term: str, factor: float) -> None:
            if term in self._postings and factor > found.get(term, 0.0):
                found[term] = factor

        add(word, 1.0)
        for synonym in SYNONYMS.get(word, ()):
            add(synonym, 0.6)
        if len(word) >= MIN_AFFIX and word.isalpha():
            i = bisect_left(self._vocab, word)
            for term in self._vocab[i:i + 50]:  # catalog words that extend it: ship → shipment
                if not term.startswith(word):
                    break
                if term[len(word):] in SUFFIXES:
                    add(term, 0.7)
            for end in range(MIN_AFFIX, len(word)):  # catalog words it extends: payment → pay
                if word[end:] in SUFFIXES:
                    add(word[:end], 0.6)
        if not found and len(word) >= 5 and word.isalpha():
            for term, factor in self._fuzzy(word).items():
                add(term, factor)
        return found

    def rank(self, question: str, *, previous: Sequence[str] = ()) -> list[tuple[int, float]]:
        """(doc index, score) for every table with a positive score, best first."""
        weights: dict[str, float] = {}
        for term in terms(question):
            weights[term] = 1.0
        for text in previous:
            for term in terms(text):
                weights.setdefault(term, PREVIOUS_WEIGHT)
        scores: dict[int, float] = defaultdict(float)
        matched: dict[str, float] = {}  # catalog word → best factor × question weight (for name coverage)
        for word, weight in weights.items():
            best: dict[int, float] = {}
            for term, factor in self.expand(word).items():
                matched[term] = max(matched.get(term, 0.0), factor * weight)
                idf = self._idf[term]
                for doc, field_weight in self._postings[term].items():
                    value = weight * factor * idf * field_weight
                    if value > best.get(doc, 0.0):
                        best[doc] = value
            for doc, value in best.items():
                scores[doc] += value
        ranked = []
        for doc, score in scores.items():
            names = self._name_terms[doc]
            coverage = sum(matched.get(t, 0.0) for t in names) / len(names)
            ranked.append((doc, score + COVERAGE_BONUS * coverage + self._prior[doc]))
        ranked.sort(key=lambda item: (-item[1], self.docs[item[0]].schema, self.docs[item[0]].name))
        return ranked

    def central(self, count: int | None = None) -> list[int]:
        """Documents by links, most linked first (computed once): the default order when a question names
        nothing, and the order in which unranked tables are listed by name."""
        if self._central is None:
            self._central = sorted(range(len(self.docs)),
                                   key=lambda i: (-self.docs[i].links, self.docs[i].schema, self.docs[i].name))
        return self._central if count is None else [i for i in self._central[:count] if self.docs[i].links > 0]

"""The schema text the model sees for one question: never a full dump.

Small schemas (everything fits the token budget) are shown whole. Bigger ones get, within the budget:
1. a compact catalog: every table name grouped by schema, the most linked first when even the names do
   not fit, cut with a count; the same text for every question, so it goes in the prompt's stable part,
   which servers can reuse from one question to the next (``SchemaParts.stable``);
2. with the question (``SchemaParts.question``): full detail (columns with types, keys, short comments,
   foreign-key neighbours) of the tables the question most likely needs, ranked by :mod:`core.prompt.ranking`,
   then widened along foreign keys, because the table a question names is rarely the only one its SQL
   joins; and the names of other likely tables the catalog had to leave out. ``list_tables`` and
   ``describe_table`` look up the rest.
The catalog itself comes from :class:`core.prompt.catalog_cache.CatalogCache` (set-based, cached, DDL-aware).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.prompt.catalog_cache import Catalog, CatalogCache, Table, estimate_tokens, readable_names
from core.prompt.ranking import terms

if TYPE_CHECKING:
    from core.db.base import Database

DEFAULT_TOKENS = 2000
DEFAULT_DETAIL_TABLES = 8
DETAIL_SHARE = 0.6  # of the budget, at most, for detailed tables; the catalog of names gets the rest
MAX_COLUMNS = 40
TABLE_COMMENT_CHARS = 200
COLUMN_COMMENT_CHARS = 80
MAX_REFERENCED_BY = 6
NEIGHBOUR_BOOST = 0.3  # a detailed table's foreign-key neighbour inherits this share of its score
RELATIVE_CUTOFF = 0.15  # tables scoring under this share of the best one stay names only
COPY_DISCOUNT = 0.3  # orders_archive_2019 ranks below orders, whose detail line names it
MAX_VARIANTS = 5
MAX_EXTRA_NAMES = 30  # question-specific names beside the detail, for tables the stable catalog had to leave out


_IDENTIFIER_RE = re.compile(r"[^\W\d][\w$]*")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which tables get detail (best first) and the priority order of all the others."""

    detail: list[Table]
    others: list[Table]


class SchemaContext:
    """Builds the per-question schema text; one instance is shared by every conversation."""

    def __init__(
        self,
        *,
        cache: CatalogCache | None = None,
        max_tokens: int | None = None,
        detail_tables: int | None = None,
        recheck_s: float = 5.0,
    ) -> None:
        self.cache = cache or CatalogCache(recheck_s=recheck_s)
        self._max_tokens = max_tokens
        self._detail_tables = detail_tables

    async def for_question(
        self, db: Database, *, role: str | None, question: str, previous: Sequence[str] = ()
    ) -> str:
        """Schema text for ``question``; ``previous`` (earlier questions in the thread) helps follow-ups."""
        catalog = await self.cache.get(db, role=role)
        tokens = self._max_tokens or db.settings.schema_context_tokens
        detail = self._detail_tables or db.settings.schema_detail_tables
        return render_context(catalog, question=question, previous=previous, max_tokens=tokens,
                              detail_tables=detail)

    async def parts(
        self, db: Database, *, role: str | None, question: str, previous: Sequence[str] = ()
    ) -> SchemaParts:
        """:meth:`for_question` split into the part shared by every question and the question's own."""
        catalog = await self.cache.get(db, role=role)
        tokens = self._max_tokens or db.settings.schema_context_tokens
        detail = self._detail_tables or db.settings.schema_detail_tables
        return render_parts(catalog, question=question, previous=previous, max_tokens=tokens,
                            detail_tables=detail)


    async def readable_tables(self, db: Database, *, role: str | None) -> frozenset[str]:
        """The names (``schema.table`` and bare) of every table ``role`` can read, from the cached catalog."""
        catalog = await self.cache.get(db, role=role)
        if catalog.readable is None:  # once per catalog version: thousands of tables cost ms per turn otherwise
            catalog.readable = readable_names([(t.schema, t.name) for t in catalog.tables])
        return catalog.readable


@dataclass(frozen=True, slots=True)
class SchemaParts:
    """The schema text in two parts: ``stable`` is the same for every question of a (database, role) and
    goes first in the prompt, where a server can reuse it; ``question`` depends on the question and goes
    with it, last."""

    stable: str
    question: str = ""

    @property
    def text(self) -> str:
        return "\n".join(part for part in (self.stable, self.question) if part)


def render_context(
    catalog: Catalog, *, question: str, previous: Sequence[str] = (), max_tokens: int = DEFAULT_TOKENS,
    detail_tables: int = DEFAULT_DETAIL_TABLES,
) -> str:
    """The schema text within ``max_tokens`` (estimated): whole when it fits, else catalog + detail."""
    return render_parts(catalog, question=question, previous=previous, max_tokens=max_tokens,
                        detail_tables=detail_tables).text


def render_parts(
    catalog: Catalog, *, question: str, previous: Sequence[str] = (), max_tokens: int = DEFAULT_TOKENS,
    detail_tables: int = DEFAULT_DETAIL_TABLES,
) -> SchemaParts:
    """Whole when it fits (all stable). Else a stable catalog of names (hubs first when cut) and, for the
    question, full detail of the tables it most likely needs plus the names of others it may need."""
    if not catalog.tables:
        return SchemaParts("")
    budget = max_tokens * 4  # characters, the inverse of estimate_tokens
    if budget not in catalog.whole:  # the same for every question on this catalog: decided once
        catalog.whole[budget] = (  # every foreign key shows as an arrow: no "referenced by" lines needed
            "\n".join(render_table(catalog, t, referenced_by=False) for t in catalog.tables)
            if _fits_whole(catalog, budget) else None
        )
    whole = catalog.whole[budget]
    if whole is not None:
        return SchemaParts(whole)
    detail_budget = budget * DETAIL_SHARE
    stable, listed = _stable_names(catalog, budget=int(budget - detail_budget))
    chosen = select_tables(catalog, question=question, previous=previous, detail_tables=detail_tables)
    wanted = set(terms(question)) | set(_IDENTIFIER_RE.findall(question.lower()))
    blocks: list[str] = []
    shown: list[Table] = []
    used = 0
    for table in chosen.detail:
        block = render_table(catalog, table, wanted=wanted)
        if not blocks and len(block) > detail_budget:  # one huge table: fewer columns, no comments
            block = render_table(catalog, table, wanted=wanted, max_columns=12, comments=False)
            block = block if len(block) <= detail_budget else _cut(block, int(detail_budget))
        if blocks and used + len(block) + 1 > detail_budget:
            chosen.others.insert(0, table)  # did not fit: at least its name is listed
            continue
        blocks.append(block)
        shown.append(table)
        used += len(block) + 1
    named = set(listed) | {t.oid for t in shown} | {o for t in shown for o in t.variants}
    header = "Other tables that may matter (names only):"
    extra = render_names(chosen.others[:MAX_EXTRA_NAMES], budget=int(detail_budget - used - len(header) - 2),
                         named=named, counts=False)
    parts = []
    if blocks:
        parts.append("Tables most relevant to this question:\n" + "\n".join(blocks))
    if extra:
        parts.append(header + "\n" + extra)
    return SchemaParts(stable, "\n".join(parts))


def _stable_names(catalog: Catalog, *, budget: int) -> tuple[str, frozenset[int]]:
    """Every table's name, grouped by schema, the hubs kept when they do not all fit: the same text for
    every question on this catalog (computed once per budget)."""
    cached = catalog.names.get(budget)
    if cached is None:
        header = "Tables (names only; describe_table shows columns):"
        ordered = [catalog.tables[i] for i in catalog.index.central()]
        listed: set[int] = set()
        text = render_names(ordered, budget=budget - len(header) - 1, listed=listed)
        cached = catalog.names[budget] = (f"{header}\n{text}" if text else "", frozenset(listed))
    return cached


def _fits_whole(catalog: Catalog, budget: int) -> bool:
    """Whether every table fits in detail; stops rendering as soon as it cannot (5,000 tables: ~30 rendered)."""
    used = 0
    for table in catalog.tables:
        used += len(render_table(catalog, table, referenced_by=False)) + 1
        if used > budget:
            return False
    return True


def select_tables(
    catalog: Catalog, *, question: str, previous: Sequence[str] = (), detail_tables: int = DEFAULT_DETAIL_TABLES
) -> Selection:
    """Rank tables for the question, widen along foreign keys, split into detail and names."""
    tables = catalog.tables
    position = catalog.position
    ranked = catalog.index.rank(question, previous=previous)
    score: dict[int, float] = defaultdict(float)
    for i, value in ranked:
        score[i] += value
    if not ranked:  # nothing in the question matches: show the hubs of the schema
        for rank, i in enumerate(catalog.index.central(3)):
            score[i] = 1.0 / (rank + 1)
    for i in list(score):  # a copy's relevance is its base table's: show the base, name the copy beside it
        base = tables[i].variant_of
        if base is not None:
            j = position[base]
            score[j] = max(score[j], score[i])
            score[i] *= COPY_DISCOUNT
    seeds = sorted(score.items(), key=lambda item: -item[1])[:5]
    touched: dict[int, int] = defaultdict(int)
    for i, value in seeds:
        for oid in catalog.neighbours(tables[i].oid):
            j = position[oid]
            score[j] += NEIGHBOUR_BOOST * value
            touched[j] += 1
    for j, count in touched.items():  # a table joining two of the best ones is a bridge the SQL needs
        if count >= 2:
            score[j] += NEIGHBOUR_BOOST * min(v for _, v in seeds)
    order = sorted(score, key=lambda i: (-score[i], tables[i].schema, tables[i].name))
    best = score[order[0]] if order else 0.0
    detail_idx = [i for i in order if score[i] >= RELATIVE_CUTOFF * best][:detail_tables]
    detail = [tables[i] for i in detail_idx]
    shown = set(detail_idx)
    rest = [tables[i] for i in order if i not in shown]
    scored = set(order)
    rest += [tables[i] for i in catalog.index.central() if i not in scored]  # the hubs first
    return Selection(detail=detail, others=rest)


def render_table(
    catalog: Catalog, table: Table, *, wanted: set[str] | None = None, notes: bool = True,
    max_columns: int = MAX_COLUMNS, comments: bool = True, referenced_by: bool = True,
) -> str:
    """``schema.table(col type PK, col type → other.table(col) /* comment */, …)  -- comment``."""
    fk_of = {fk.columns[0]: fk for fk in table.foreign_keys if len(fk.columns) == 1}
    columns = table.columns
    hidden = 0
    if len(columns) > max_columns:  # keys and the columns the question mentions first, then table order
        keys = set(table.primary_key) | set(fk_of)
        wanted = wanted or set()

        def relevance(i: int) -> tuple[int, int, int]:
            c = columns[i]  # named as typed ("measure_1234") beats sharing a word ("measure"); keys first
            return (c.sql_name in keys, c.name.lower() in wanted, len(wanted & set(terms(c.name))))

        first = sorted((i for i in range(len(columns)) if any(relevance(i))), key=relevance, reverse=True)
        chosen = set(first[:max_columns])
        for i in range(len(columns)):
            if len(chosen) >= max_columns:
                break
            chosen.add(i)
        hidden = len(columns) - len(chosen)
        columns = [c for i, c in enumerate(columns) if i in chosen]
    cells = []
    for c in columns:
        cell = f"{c.sql_name} {c.type}"
        if c.sql_name in table.primary_key:
            cell += " PK"
        fk = fk_of.get(c.sql_name)
        if fk is not None:
            target = catalog.by_oid[fk.target]
            cell += f" → {target.qualified}({', '.join(fk.target_columns)})"
        if c.comment and comments:
            cell += f" /* {_cut(c.comment, COLUMN_COMMENT_CHARS).replace('*/', '* /')} */"
        cells.append(cell)
    if hidden:
        cells.append(f"… {hidden} more columns")
    kind = {"v": " [view]", "m": " [materialized view]", "f": " [foreign table]"}.get(table.kind, "")
    line = f"{table.qualified}({', '.join(cells)}){kind}"
    if table.comment:
        line += f"  -- {_cut(table.comment, TABLE_COMMENT_CHARS)}"
    for fk in table.foreign_keys:
        if len(fk.columns) > 1:
            target = catalog.by_oid[fk.target]
            line += f"\n  FK ({', '.join(fk.columns)}) → {target.qualified}({', '.join(fk.target_columns)})"
    if not notes:  # the plain dump: no "referenced by"/"copies" lines (foreign keys already point both ways)
        return line
    if table.referenced_by and referenced_by:
        names = [catalog.by_oid[o].qualified for o in table.referenced_by[:MAX_REFERENCED_BY]]
        more = len(table.referenced_by) - len(names)
        line += "\n  referenced by: " + ", ".join(names) + (f" (+{more} more)" if more > 0 else "")
    if table.variants:
        names = sorted(catalog.by_oid[o].sql_name for o in table.variants)
        more = len(names) - MAX_VARIANTS
        line += "\n  copies: " + ", ".join(names[:MAX_VARIANTS]) + (f" (+{more} more)" if more > 0 else "")
    return line


def render_names(tables: Sequence[Table], *, budget: int, named: set[int] | None = None,
                 listed: set[int] | None = None, counts: bool = True) -> str:
    """Names grouped by schema, the first tables in ``tables`` kept when they do not all fit.

    Copies (``variant_of``) are counted beside their base table instead of listed; ``named`` are tables
    already shown elsewhere in the prompt (detail lines and their copies), left out here; ``listed``, if
    given, receives the oids named here (copies included); ``counts=False`` leaves out the "+N more" notes.
    """
    named = named or set()
    copies: dict[int, list[int]] = defaultdict(list)
    candidates: list[Table] = []
    for t in tables:
        if t.oid in named:
            continue
        if t.variant_of is not None:
            copies[t.variant_of].append(t.oid)
            if t.variant_of not in named:
                continue
        candidates.append(t)
    if not candidates or budget <= 0:
        return f"({len(candidates)} more tables; list_tables shows them)" if candidates and counts else ""
    kept: dict[str, list[str]] = defaultdict(list)
    totals: dict[str, int] = defaultdict(int)
    for t in candidates:
        totals[t.sql_schema] += 1 + (len(copies[t.oid]) if t.variant_of is None else 0)
    reserve = 80 + 12 * len(totals) if counts else 0  # room for the "+N more" notes
    used = 0
    for t in candidates:
        name = t.sql_name + (f" (+{len(copies[t.oid])} copies)" if copies.get(t.oid) else "")
        cost = len(name) + 2 + (0 if t.sql_schema in kept else len(t.sql_schema) + 16)
        if used + cost > budget - reserve:
            break
        kept[t.sql_schema].append(name)
        used += cost
        if listed is not None:
            listed.add(t.oid)
            listed.update(copies.get(t.oid, ()))
    lines = []
    for schema in sorted(kept):
        names = sorted(kept[schema])
        more = totals[schema] - sum(1 + _copies_in(n) for n in names) if counts else 0
        lines.append(f"{schema}: {', '.join(names)}" + (f" (+{more} more)" if more else ""))
    missing = {s: n for s, n in totals.items() if s not in kept}
    if missing and counts:
        count = sum(missing.values())
        schemas = ", ".join(sorted(missing)[:8]) + (", …" if len(missing) > 8 else "")
        lines.append(f"(+{count} more tables in schemas {schemas}; list_tables shows them)")
    return "\n".join(lines)


def _copies_in(name: str) -> int:
    _, sep, tail = name.rpartition(" (+")
    return int(tail.split(" ")[0]) if sep and tail.endswith(" copies)") else 0


def full_dump(catalog: Catalog) -> str:
    """Every table in full detail: what sending the whole schema would cost (the benchmark's baseline)."""
    return "\n".join(render_table(catalog, t, notes=False) for t in catalog.tables)


def context_tokens(text: str) -> int:
    return estimate_tokens(text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

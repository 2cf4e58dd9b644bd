"""The benchmark's questions: TOML files of ``[[question]]`` tables (id, question, sql, ordered, tags)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FILE = Path(__file__).with_name("questions.toml")


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    sql: str
    ordered: bool = False
    tags: tuple[str, ...] = ()


def load_questions(paths: Sequence[Path] = (DEFAULT_FILE,)) -> list[Question]:
    """Every question of ``paths`` in file order; ids must be unique across files."""
    questions: list[Question] = []
    seen: set[str] = set()
    for path in paths:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for index, item in enumerate(data.get("question", [])):
            try:
                q = Question(
                    id=str(item["id"]), question=str(item["question"]), sql=str(item["sql"]).strip(),
                    ordered=bool(item.get("ordered", False)), tags=tuple(str(t) for t in item.get("tags", ())),
                )
            except KeyError as exc:
                raise ValueError(f"{path}: question #{index + 1} lacks {exc.args[0]!r}") from None
            if q.id in seen:
                raise ValueError(f"{path}: duplicate question id {q.id!r}")
            seen.add(q.id)
            questions.append(q)
    return questions


def select(questions: Iterable[Question], *, only: Sequence[str] = (), tags: Sequence[str] = (),
           limit: int | None = None) -> list[Question]:
    """Filter by ids (in the given order), by any of ``tags``, then keep the first ``limit``."""
    chosen = list(questions)
    if only:
        by_id = {q.id: q for q in chosen}
        missing = [i for i in only if i not in by_id]
        if missing:
            raise ValueError(f"unknown question id(s): {', '.join(missing)}")
        chosen = [by_id[i] for i in only]
    if tags:
        chosen = [q for q in chosen if set(q.tags) & set(tags)]
    return chosen[:limit] if limit is not None else chosen

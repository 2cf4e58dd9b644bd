"""core/errors.py draws the tree of pgbot's errors; every PgbotError and ModelHint subclass in core is in it,
under its real parent, and nothing drawn is gone."""

from __future__ import annotations

import importlib
import pkgutil
import re

import core
import core.errors
from core.errors import ModelHint, PgbotError

ROOTS: tuple[type[Exception], ...] = (PgbotError, ModelHint)
BRANCH = re.compile(r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)")


def drawn_parents() -> dict[str, str]:
    """Each drawn class name -> the name it is drawn under, read from the docstring's indentation."""
    parents: dict[str, str] = {}
    above: list[str] = []  # the chain of names at each depth, the root first
    for line in (core.errors.__doc__ or "").splitlines():
        line = line.removeprefix("    ")
        if line.split(" ", 1)[0] in {root.__name__ for root in ROOTS}:
            above = [line.split(" ", 1)[0]]
            continue
        found = BRANCH.match(line)
        if found is None or not above:
            continue
        depth = len(found["indent"]) // 4 + 1
        above = [*above[:depth], found["name"]]
        parents[found["name"]] = above[depth - 1]
    return parents


def subclasses(root: type[Exception]) -> list[type[Exception]]:
    found = []
    for child in root.__subclasses__():
        found += [child, *subclasses(child)]
    return found


def test_every_error_class_in_core_is_drawn_under_its_parent() -> None:
    for module in pkgutil.walk_packages(core.__path__, "core."):
        importlib.import_module(module.name)
    drawn = drawn_parents()
    classes = [cls for root in ROOTS for cls in subclasses(root) if cls.__module__.startswith("core.")]
    assert len(classes) > 25 and len(drawn) > 25  # the walk and the parse both found the tree
    actual = {cls.__name__: cls.__bases__[0].__name__ for cls in classes}
    assert {name: parent for name, parent in actual.items() if drawn.get(name) != parent} == {}, (
        "draw these in core/errors.py's docstring, under these parents")
    assert sorted(set(drawn) - set(actual)) == [], "drawn but no longer defined"
    elsewhere = {cls.__name__: cls.__module__ for cls in classes if cls.__module__ != "core.errors"}
    for name, module in elsewhere.items():  # the tree says where a class outside core/errors.py lives
        assert re.search(rf"{name}\b.*\b{re.escape(module)}\b", core.errors.__doc__ or ""), (name, module)

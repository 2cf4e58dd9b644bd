"""Every ``pgbot`` subcommand joins the CLI one way: a ``register(sub, common)`` that sets its handler."""

from __future__ import annotations

import argparse
import inspect

from bot.cli import build_parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_every_subcommand_has_an_async_handler_and_building_twice_changes_nothing() -> None:
    first, second = subcommands(build_parser()), subcommands(build_parser())
    assert list(first) == list(second)  # nothing accumulates in a global between builds
    assert {"chat", "ask", "health", "migrate", "backup", "schedule"} <= set(first)
    for name, parser in first.items():
        handler = parser.get_default("handler")
        assert inspect.iscoroutinefunction(handler), name
        assert handler is second[name].get_default("handler")


def test_an_action_of_a_nested_command_reaches_its_commands_handler() -> None:
    args = build_parser().parse_args(["backup", "verify", "some.dump"])
    assert args.handler.__name__ == "backup_main" and args.file == "some.dump"

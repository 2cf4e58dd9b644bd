"""deploy/slack-manifest.yaml asks for exactly what the adapter uses: the scopes of the Web API methods it
calls (found in its source), the events it listens to, interactivity for its buttons, and Socket Mode."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
ADAPTER = ROOT / "adapters" / "slack"

# Web API method (as slack_sdk names it) → the bot scopes Slack requires for it.
METHOD_SCOPES = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_delete": {"chat:write"},  # a long turn's "Working on it…" goes when its answer is posted anew
    "files_upload_v2": {"files:write"},  # files.getUploadURLExternal + files.completeUploadExternal
    "conversations_open": {"im:write"},  # an export run as someone else's role goes to them in a DM
    "views_open": set(),  # the Edit SQL modal: no scope, only the click's trigger_id (and interactivity)
}
# bolt listener → the bot events it needs and their scopes.
EVENT_SUBSCRIPTIONS = {
    "app_mention": ({"app_mention"}, {"app_mentions:read"}),
    "message": (
        {"message.channels", "message.groups", "message.im", "message.mpim"},
        {"channels:history", "groups:history", "im:history", "mpim:history"},
    ),
}


def manifest() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "deploy" / "slack-manifest.yaml").read_text())
    assert isinstance(data, dict)
    return data


def adapter_source() -> list[ast.AST]:
    return [ast.parse(path.read_text()) for path in sorted(ADAPTER.glob("*.py"))]


def web_api_calls() -> set[str]:
    """Every ``client.<method>(...)`` the adapter makes."""
    return {
        node.func.attr
        for tree in adapter_source() for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name) and node.func.value.id == "client"
    }


def listeners(kind: str) -> set[str]:
    """The first argument of every ``@app.<kind>("...")`` decorator."""
    return {
        str(deco.args[0].value)
        for tree in adapter_source() for node in ast.walk(tree)
        if isinstance(node, ast.AsyncFunctionDef)
        for deco in node.decorator_list
        if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == kind
        and deco.args and isinstance(deco.args[0], ast.Constant) and isinstance(deco.args[0].value, str)
    }


def test_scopes_are_exactly_what_the_code_calls_and_listens_to() -> None:
    calls = web_api_calls()
    assert calls >= {"chat_postMessage", "chat_update", "chat_postEphemeral", "files_upload_v2"}
    unknown = calls - METHOD_SCOPES.keys()
    assert not unknown, f"add the scopes of {unknown} to METHOD_SCOPES and deploy/slack-manifest.yaml"
    events = listeners("event")
    assert events == set(EVENT_SUBSCRIPTIONS)
    needed = set().union(*(METHOD_SCOPES[c] for c in calls), *(EVENT_SUBSCRIPTIONS[e][1] for e in events))
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed
    assert "user" not in manifest()["oauth_config"]["scopes"]  # pgbot never acts as a person


def test_events_interactivity_and_socket_mode() -> None:
    settings = manifest()["settings"]
    wanted = set().union(*(EVENT_SUBSCRIPTIONS[e][0] for e in listeners("event")))
    assert set(settings["event_subscriptions"]["bot_events"]) == wanted
    assert settings["interactivity"]["is_enabled"] is True  # Approve / Reject and 👍/👎 are buttons
    assert settings["socket_mode_enabled"] is True  # the default mode needs no public URL
    assert manifest()["features"]["app_home"]["messages_tab_enabled"] is True  # DMs


def test_the_ast_scan_sees_real_calls() -> None:
    """Guard against the scan silently finding nothing (a rename of the ``client`` parameter, say)."""
    assert "chat_update" in web_api_calls()
    assert listeners("event") == {"app_mention", "message"}

"""Platform groups (``discord-role:<id>``) in the roles table: precedence, config checks, approvers by group."""

from __future__ import annotations

import logging

import pytest
import structlog
from pydantic import ValidationError

from core import permissions
from core.config import DatabaseSettings
from core.errors import AccessDeniedError
from core.permissions import Actor, may_approve, resolve_role

DSN = "postgresql://x@h/db"
R1, R2, R3 = "discord-role:101", "discord-role:102", "discord-role:103"


def role(settings: DatabaseSettings, identity: str, *groups: str) -> str | None:
    return resolve_role(database="db", settings=settings, identity=identity, groups=groups).role


def test_identity_entry_beats_groups_and_groups_beat_star() -> None:
    settings = DatabaseSettings(dsn=DSN, roles={R1: "analyst", "discord:7": "own", "*": "reader"})
    assert role(settings, "discord:7", R1) == "own"
    assert role(settings, "discord:8", R1) == "analyst"
    assert role(settings, "discord:8", R3) == "reader"  # a group the table does not name: as if none
    assert role(settings, "discord:8") == "reader"
    actor = resolve_role(database="db", settings=settings, identity="discord:8", groups=(R3, R1))
    assert actor == Actor(identity="discord:8", role="analyst", database="db", groups=(R3, R1))


def test_groups_mapping_to_different_roles_take_the_first_in_config_order() -> None:
    settings = DatabaseSettings(dsn=DSN, roles={R2: "engineer", R1: "analyst"})
    assert role(settings, "discord:8", R1, R2) == "engineer"
    assert role(settings, "discord:8", R2, R1) == "engineer"  # the platform's order does not matter
    assert role(settings, "discord:8", R1) == "analyst"
    same = DatabaseSettings(dsn=DSN, roles={R1: "analyst", R2: "analyst"})
    assert role(same, "discord:8", R2, R1) == "analyst"


def test_the_matching_group_is_logged_at_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = DatabaseSettings(dsn=DSN, roles={R2: "engineer", R1: "analyst"})
    # An earlier test may have configured logging (an INFO filter, cached loggers): capture_logs replaces only
    # the processors, so let debug through and use a fresh logger for this test, then put the config back.
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
                        cache_logger_on_first_use=False)
    monkeypatch.setattr(permissions, "log", structlog.get_logger("core.permissions"))
    try:
        with structlog.testing.capture_logs() as logs:
            role(settings, "discord:8", R1, R2)
    finally:
        structlog.configure(**before)
    (entry,) = [e for e in logs if e["event"] == "role_from_group"]
    assert entry["log_level"] == "debug" and entry["group"] == R2 and entry["other_matches"] == [R1]


def test_without_an_entry_groups_give_no_access_and_no_roles_table_means_the_login_role() -> None:
    settings = DatabaseSettings(dsn=DSN, roles={R1: "analyst"})
    with pytest.raises(AccessDeniedError, match=r"You \(discord:8\) are not mapped"):
        resolve_role(database="db", settings=settings, identity="discord:8", groups=(R2,))
    denied = DatabaseSettings(dsn=DSN, roles={R1: "none", R2: "analyst", "*": "reader"})
    with pytest.raises(AccessDeniedError):  # the first matching group says "no access": that is the answer
        resolve_role(database="db", settings=denied, identity="discord:8", groups=(R2, R1))
    unmapped = DatabaseSettings(dsn=DSN)
    assert role(unmapped, "discord:8", R1) is None


def test_group_keys_are_checked_when_the_config_loads() -> None:
    for bad in ("discord-role:", "discord-role:admins", "discord-role:12 ", "discord-role:١٢٣"):
        with pytest.raises(ValidationError, match="numeric id"):
            DatabaseSettings(dsn=DSN, roles={bad: "analyst"})
        with pytest.raises(ValidationError, match="numeric id"):
            DatabaseSettings(dsn=DSN, approvers={"users": [bad]})
    ok = DatabaseSettings(dsn=DSN, roles={R1: "analyst"}, approvers={"users": [R2]})
    assert ok.roles == {R1: "analyst"} and ok.approvers.users == [R2]


def test_approvers_may_be_named_by_group() -> None:
    settings = DatabaseSettings(dsn=DSN, roles={R1: "analyst"}, approvers={"users": [R2], "roles": ["dba"]})
    lead = Actor(identity="discord:9", role="analyst", database="db", groups=(R1, R2))
    other = Actor(identity="discord:10", role="analyst", database="db", groups=(R1,))
    assert may_approve(settings=settings, approver=lead, requested_by="discord:8") is None
    assert "not an approver" in (may_approve(settings=settings, approver=other, requested_by="discord:8") or "")
    self_approval = may_approve(settings=settings, approver=lead, requested_by="discord:9")
    assert "self-approval is off" in (self_approval or "")

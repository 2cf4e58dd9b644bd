"""Who may do what: chat identity → database role, and who may approve changes.

A database with no ``roles`` table runs every statement as its login role (single-user setups, the demo,
scripts). Once a ``roles`` table exists, identities it does not name get no access unless ``"*"`` is given.

A sender may also come with platform *groups* (e.g. ``discord-role:<guild role id>``, prefixed by the adapter),
which the same table can name. Precedence: the identity's own entry; else the groups that have an entry (the
first of them in config order when they map to different roles); else ``"*"``; else no access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from core.config import DatabaseSettings
from core.errors import AccessDeniedError

NO_ACCESS = {"", "-", "none", "no access", "noaccess"}

log = structlog.get_logger(__name__)

GroupLookup = Callable[[str], Awaitable[tuple[str, ...] | None]]
"""An adapter's look-up of an identity's *current* platform groups at decision time; None: it cannot tell
(another platform, a DM), so the groups stored with the request stand. Raises PgbotError when it failed."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The person behind a request: chat identity and the database role their statements run as."""

    identity: str
    role: str | None  # None: the login role (no roles table configured)
    database: str
    groups: tuple[str, ...] = ()  # platform groups the identity came with (resolution, approvals)


def resolve_role(
    *, database: str, settings: DatabaseSettings, identity: str, groups: tuple[str, ...] = ()
) -> Actor:
    """Map ``identity`` (with its platform ``groups``) to its role on ``database`` or raise
    :class:`AccessDeniedError`; precedence in the module docstring."""
    groups = tuple(groups)
    roles = settings.roles
    if roles is None:
        return Actor(identity=identity, role=None, database=database, groups=groups)
    role = roles.get(identity)
    if role is None:
        role = _group_role(roles, identity=identity, groups=groups, database=database)
    if role is None:
        role = roles.get("*")
    if role is None or role.strip().lower() in NO_ACCESS:
        raise AccessDeniedError(
            f"You ({identity}) are not mapped to a database role on '{database}', so pgbot will not run "
            "anything for you there. Ask an admin to add you under "
            f"[databases.{database}.roles]."
        )
    return Actor(identity=identity, role=role, database=database, groups=groups)


def _group_role(roles: dict[str, str], *, identity: str, groups: tuple[str, ...], database: str) -> str | None:
    """The role of the first of ``groups`` named in ``roles``, in config order: a member of several mapped
    groups gets the same role whichever order the platform lists them in."""
    if not groups:
        return None
    held = set(groups)
    matched = [(group, role) for group, role in roles.items() if group in held]
    if not matched:
        return None
    group, role = matched[0]
    log.debug("role_from_group", identity=identity, database=database, group=group, role=role,
              other_matches=[g for g, r in matched[1:] if r != role])
    return role


TERMINAL = "terminal:"  # identities the terminal adapter makes; Slack and Discord ones carry their own prefix


def approvers_configured(settings: DatabaseSettings) -> bool:
    return bool(settings.approvers.users or settings.approvers.roles)


def operator_approves(settings: DatabaseSettings, identity: str) -> bool:
    """The single-user rule: no roles table and no approvers, and the decision comes from the terminal, whose
    user holds the config file (and with it the login role) anyway. Never true for Slack or Discord: their
    identities are ``slack:…``/``discord:…``, built by the adapter from the platform's own user id."""
    return identity.startswith(TERMINAL) and settings.roles is None and not approvers_configured(settings)


def how_to_add_approvers(database: str) -> str:
    """The config that lets someone approve from chat, for the card and for refusals."""
    return (f"add them to pgbot's config under [databases.{database}.approvers] as roles = [\"<db role>\"] "
            f"and/or users = [\"slack:U…\", \"discord:…\"]")


def may_approve(*, settings: DatabaseSettings, approver: Actor, requested_by: str) -> str | None:
    """Return None when ``approver`` may approve, else the reason they may not.

    Safe by default: in chat nobody approves while no approvers are configured, and nobody approves their
    own request unless ``allow_self_approval``; only the terminal keeps the single-user rule."""
    rules = settings.approvers
    if operator_approves(settings, approver.identity):
        return None
    if not approvers_configured(settings):
        return f"no approvers are configured for '{approver.database}'; {how_to_add_approvers(approver.database)}"
    if approver.identity == requested_by and not rules.allow_self_approval:
        return "you requested this change and self-approval is off for this database"
    if approver.identity in rules.users or any(group in rules.users for group in approver.groups):
        return None
    if approver.role is not None and approver.role in rules.roles:
        return None
    return "you are not an approver for this database"

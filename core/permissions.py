"""Who may do what: chat identity → database role, and who may approve changes.

A database with no ``roles`` table runs every statement as its login role (single-user setups, the demo,
scripts). Once a ``roles`` table exists, identities it does not name get no access unless ``"*"`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import DatabaseSettings
from core.errors import AccessDeniedError

NO_ACCESS = {"", "-", "none", "no access", "noaccess"}


@dataclass(frozen=True, slots=True)
class Actor:
    """The person behind a request: chat identity and the database role their statements run as."""

    identity: str
    role: str | None  # None: the login role (no roles table configured)
    database: str


def resolve_role(*, database: str, settings: DatabaseSettings, identity: str) -> Actor:
    """Map ``identity`` to its role on ``database`` or raise :class:`AccessDeniedError`."""
    roles = settings.roles
    if roles is None:
        return Actor(identity=identity, role=None, database=database)
    role = roles.get(identity, roles.get("*"))
    if role is None or role.strip().lower() in NO_ACCESS:
        raise AccessDeniedError(
            f"You ({identity}) are not mapped to a database role on '{database}', so pgbot will not run "
            "anything for you there. Ask an admin to add you under "
            f"[databases.{database}.roles]."
        )
    return Actor(identity=identity, role=role, database=database)


def may_approve(*, settings: DatabaseSettings, approver: Actor, requested_by: str) -> str | None:
    """Return None when ``approver`` may approve, else the reason they may not."""
    rules = settings.approvers
    if not rules.users and not rules.roles and settings.roles is None:
        return None  # single-user setup (no roles, no approvers): whoever runs pgbot approves
    if approver.identity == requested_by and not rules.allow_self_approval:
        return "you requested this change and self-approval is off for this database"
    if approver.identity in rules.users:
        return None
    if approver.role is not None and approver.role in rules.roles:
        return None
    return "you are not an approver for this database"

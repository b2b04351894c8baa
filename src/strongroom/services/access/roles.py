"""The roles, their permissions (in this one place) and the check every interface makes.

A principal is who an API request acts as: an API token's name and id and the token's
role. The local CLI acts as the local user, who can open the catalog and the keys
directly and so holds every permission (:func:`local_principal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from strongroom.errors import ConfigError, PermissionDeniedError
from strongroom.services.context import Actor


class Permission(StrEnum):
    """One thing a role may be allowed to do."""

    READ = "read"
    """See resources, plans, schedules, jobs, recovery points, vaults, reports, monitor."""
    START_BACKUP = "backup.start"
    START_VERIFY = "verify.start"
    """Verify a recovery point, with or without a restore test."""
    CANCEL_JOB = "job.cancel"
    START_RESTORE = "restore.start"
    """Restore a recovery point into a target (which can overwrite data)."""
    PLACE_LEGAL_HOLD = "legal-hold.place"
    LOCK_VAULT = "vault.lock"
    """Set or tighten a vault lock."""
    PRIVILEGED_ACTION = "privileged"
    """Governance bypass, unlocking a vault, removing a legal hold, removing a key: each
    also needs a reason, recorded with the principal."""
    READ_AUDIT = "audit.read"
    READ_COMPLIANCE = "compliance.read"
    MANAGE_TOKENS = "token.manage"
    APPLY_CONFIG = "config.apply"


class Role(StrEnum):
    """The roles a token can hold."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    RESTORER = "restorer"
    ADMIN = "admin"
    AUDITOR = "auditor"


ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = MappingProxyType(
    {
        Role.VIEWER: frozenset({Permission.READ}),
        Role.OPERATOR: frozenset(
            {
                Permission.READ,
                Permission.START_BACKUP,
                Permission.START_VERIFY,
                Permission.CANCEL_JOB,
                Permission.PLACE_LEGAL_HOLD,
            }
        ),
        Role.RESTORER: frozenset(
            {Permission.READ, Permission.START_RESTORE, Permission.CANCEL_JOB}
        ),
        Role.ADMIN: frozenset(Permission),
        Role.AUDITOR: frozenset(
            {Permission.READ, Permission.READ_AUDIT, Permission.READ_COMPLIANCE}
        ),
    }
)
"""The permission matrix: every check in the CLI, the API and the console reads it."""


@dataclass(frozen=True)
class Principal:
    """Who acts: a display name, a role and the token it authenticated with (if any)."""

    name: str
    role: Role
    token_id: str | None = None

    def actor(self, origin: str) -> Actor:
        """The audit trail's actor for this principal acting from ``origin``."""
        return Actor(name=self.name, origin=origin)

    def may(self, permission: Permission) -> bool:
        """Whether the principal's role grants ``permission``."""
        return permission in ROLE_PERMISSIONS[self.role]


def local_principal(actor: Actor) -> Principal:
    """The local user of the CLI: it can open the catalog and keys itself, so it is admin."""
    return Principal(name=actor.name, role=Role.ADMIN)


def authorize(principal: Principal, permission: Permission) -> None:
    """Return if ``principal``'s role grants ``permission``.

    Raises PermissionDeniedError naming the role, the permission and the roles that have it.
    """
    if principal.may(permission):
        return
    holders = ", ".join(
        role.value for role, granted in ROLE_PERMISSIONS.items() if permission in granted
    )
    raise PermissionDeniedError(
        f"{principal.name} (role {principal.role.value}) may not {permission.value}: "
        f"that needs the role {holders}"
    )


def authorize_privileged(principal: Principal, reason: str | None) -> str:
    """Check a privileged action (governance bypass, unlock, legal-hold removal, key
    removal): the principal must hold :attr:`Permission.PRIVILEGED_ACTION` and give a
    reason. Returns the reason, stripped.

    Raises PermissionDeniedError for a role without it, ConfigError for a missing reason.
    """
    authorize(principal, Permission.PRIVILEGED_ACTION)
    if reason is None or not reason.strip():
        raise ConfigError("a privileged action needs a reason; it is recorded with who acted")
    return reason.strip()


def parse_role(text: str) -> Role:
    """Return the role ``text`` names. Raises ConfigError listing the roles."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ConfigError(
            f"unknown role {text!r}",
            hint=f"Roles: {', '.join(role.value for role in Role)}.",
        ) from None

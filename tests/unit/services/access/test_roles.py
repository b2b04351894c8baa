"""The permission matrix and the checks built on it."""

from __future__ import annotations

import pytest

from strongroom.errors import ConfigError, PermissionDeniedError
from strongroom.services.access.roles import (
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    Role,
    authorize,
    authorize_privileged,
    parse_role,
)

EXPECTED = {
    Role.VIEWER: {Permission.READ},
    Role.OPERATOR: {
        Permission.READ,
        Permission.START_BACKUP,
        Permission.START_VERIFY,
        Permission.CANCEL_JOB,
        Permission.PLACE_LEGAL_HOLD,
    },
    Role.RESTORER: {Permission.READ, Permission.START_RESTORE, Permission.CANCEL_JOB},
    Role.ADMIN: set(Permission),
    Role.AUDITOR: {Permission.READ, Permission.READ_AUDIT, Permission.READ_COMPLIANCE},
}


def test_the_matrix_is_the_documented_one() -> None:
    assert {role: set(granted) for role, granted in ROLE_PERMISSIONS.items()} == EXPECTED


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_authorize_follows_the_matrix(role: Role, permission: Permission) -> None:
    principal = Principal("someone", role)
    if permission in EXPECTED[role]:
        authorize(principal, permission)
    else:
        with pytest.raises(PermissionDeniedError, match=f"role {role.value}"):
            authorize(principal, permission)


def test_a_privileged_action_needs_admin_and_a_reason() -> None:
    with pytest.raises(PermissionDeniedError):
        authorize_privileged(Principal("op", Role.OPERATOR), "because")
    with pytest.raises(ConfigError, match="reason"):
        authorize_privileged(Principal("root", Role.ADMIN), "  ")
    assert authorize_privileged(Principal("root", Role.ADMIN), " case 42 ") == "case 42"


def test_parse_role_names_the_roles() -> None:
    assert parse_role("Auditor") is Role.AUDITOR
    with pytest.raises(ConfigError) as refused:
        parse_role("root")
    assert "viewer, operator, restorer, admin, auditor" in refused.value.hint

"""Every endpoint's role boundary, through the HTTP API: a role without the endpoint's
permission gets 403 (and nothing happens); a role with it gets past the check (the
empty catalog may still answer 404 or 422, never 401 or 403)."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.services.access.roles import ROLE_PERMISSIONS, Permission, Role
from tests.support.api import ApiHarness

ENDPOINTS: list[tuple[str, str, Permission, dict[str, Any] | None]] = [
    ("GET", "/api/v1/resources", Permission.READ, None),
    ("GET", "/api/v1/plans", Permission.READ, None),
    ("GET", "/api/v1/plans/nightly/schedule", Permission.READ, None),
    ("GET", "/api/v1/lifecycle/preview", Permission.READ, None),
    ("GET", "/api/v1/jobs", Permission.READ, None),
    ("GET", "/api/v1/jobs/0123abcd", Permission.READ, None),
    ("GET", "/api/v1/jobs/0123abcd/wait?timeout=0", Permission.READ, None),
    ("GET", "/api/v1/jobs/0123abcd/events", Permission.READ, None),
    ("GET", "/api/v1/jobs/0123abcd/events/stream", Permission.READ, None),
    ("GET", "/api/v1/recovery-points", Permission.READ, None),
    ("GET", "/api/v1/recovery-points/0123abcd", Permission.READ, None),
    ("GET", "/api/v1/vaults/main", Permission.READ, None),
    ("GET", "/api/v1/vaults/main/lock", Permission.READ, None),
    ("GET", "/api/v1/legal-holds", Permission.READ, None),
    ("GET", "/api/v1/reports/summary", Permission.READ, None),
    ("GET", "/api/v1/reports/detailed", Permission.READ, None),
    ("GET", "/api/v1/reports/replication-lag", Permission.READ, None),
    ("GET", "/api/v1/monitor", Permission.READ, None),
    ("POST", "/api/v1/jobs/backup", Permission.START_BACKUP, {"resource": "orders-db"}),
    ("POST", "/api/v1/jobs/verify", Permission.START_VERIFY, {"point": "0123abcd"}),
    ("POST", "/api/v1/jobs/0123abcd/cancel", Permission.CANCEL_JOB, {"reason": "test"}),
    (
        "POST",
        "/api/v1/jobs/restore",
        Permission.START_RESTORE,
        {"point": "0123abcd", "target": {"path": "/tmp/x"}},
    ),
    (
        "PUT",
        "/api/v1/recovery-points/0123abcd/legal-hold",
        Permission.PLACE_LEGAL_HOLD,
        {"reason": "case 1"},
    ),
    (
        "DELETE",
        "/api/v1/recovery-points/0123abcd/legal-hold?reason=closed",
        Permission.PRIVILEGED_ACTION,
        None,
    ),
    ("PUT", "/api/v1/vaults/main/lock", Permission.LOCK_VAULT, {"min_retention_days": 7}),
    ("POST", "/api/v1/vaults/main/unlock", Permission.PRIVILEGED_ACTION, {"reason": "test"}),
    ("GET", "/api/v1/audit", Permission.READ_AUDIT, None),
    ("GET", "/api/v1/audit/verify", Permission.READ_AUDIT, None),
    ("GET", "/api/v1/reports/compliance?framework=soc2", Permission.READ_COMPLIANCE, None),
    ("GET", "/api/v1/tokens", Permission.MANAGE_TOKENS, None),
]


def test_the_table_covers_every_endpoint(api: ApiHarness) -> None:
    def shape(path: str) -> str:
        parts = path.split("?")[0].split("/")
        names = {"0123abcd", "nightly", "main"}
        return "/".join("{}" if part in names or part.startswith("{") else part for part in parts)

    document = api.client.get("/api/v1/openapi.json").json()
    served = {
        (method.upper(), shape(path))
        for path, operations in document["paths"].items()
        for method in operations
        if path not in ("/api/v1/whoami",)
    }
    assert served == {(method, shape(path)) for method, path, _, _ in ENDPOINTS}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "path", "permission", "body"), ENDPOINTS)
def test_each_role_is_held_to_the_matrix(
    api: ApiHarness,
    role: Role,
    method: str,
    path: str,
    permission: Permission,
    body: dict[str, Any] | None,
) -> None:
    response = api.client.request(method, path, json=body, headers=api.headers(role))
    if permission in ROLE_PERMISSIONS[role]:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "PermissionDenied"

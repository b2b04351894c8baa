"""Authentication and authorization through the HTTP API: 401/403 bodies, audit, limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.api.limits import FailedLogins
from strongroom.catalog.audit import EntryFilter
from strongroom.services.access.roles import ROLE_PERMISSIONS, Permission, Role
from strongroom.services.audit.service import AuditService
from tests.support.api import ApiHarness, api_harness, secret_of

READ_ENDPOINTS = ["/api/v1/resources", "/api/v1/plans"]


def test_whoami_names_the_principal_and_its_permissions(api: ApiHarness) -> None:
    response = api.client.get("/api/v1/whoami", headers=api.headers(Role.RESTORER))
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == "restorer"
    assert body["name"].startswith("token:test-restorer:")
    assert body["permissions"] == sorted(p.value for p in ROLE_PERMISSIONS[Role.RESTORER])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer srt_0123456789ab_nope"}])
def test_no_or_a_wrong_token_is_401_with_a_json_body_and_audited(
    api: ApiHarness, headers: dict[str, str]
) -> None:
    response = api.client.get("/api/v1/resources", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "UnrecognizedClientException"
    assert "token" in error["message"]
    [entry] = AuditService(api.context).list(EntryFilter(action="api.authenticate"))
    assert (entry["outcome"], entry["actor"]) == ("refused", "anonymous")
    assert entry["origin"] == "api from testclient"


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("path", READ_ENDPOINTS)
def test_every_role_may_read(api: ApiHarness, role: Role, path: str) -> None:
    assert Permission.READ in ROLE_PERMISSIONS[role]
    response = api.client.get(path, headers=api.headers(role))
    assert response.status_code == 200, response.text
    assert response.json() == []


def test_a_refused_token_counts_against_its_address_and_is_throttled(tmp_path: Path) -> None:
    limiter = FailedLogins(max_failures=3, window=timedelta(minutes=5))
    harness: Iterator[ApiHarness] = api_harness(tmp_path / "home", failed_logins=limiter)
    api = next(harness)
    bad = {"Authorization": "Bearer srt_0123456789ab_wrong"}
    statuses = [api.client.get("/api/v1/whoami", headers=bad).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Even the right token waits until the window has passed.
    good = api.headers(Role.VIEWER)
    throttled = api.client.get("/api/v1/whoami", headers=good)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "ThrottlingException"
    api.clock.advance(timedelta(minutes=5))
    assert api.client.get("/api/v1/whoami", headers=good).status_code == 200
    harness.close()


def test_a_revoked_token_is_refused_at_once(api: ApiHarness) -> None:
    from strongroom.services.access.tokens import TokenService, split_token

    headers = api.headers(Role.ADMIN)
    assert api.client.get("/api/v1/whoami", headers=headers).status_code == 200
    parts = split_token(api.tokens[Role.ADMIN])
    assert parts is not None
    TokenService(api.context).revoke(parts[0])
    response = api.client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_openapi_is_published_without_a_token(api: ApiHarness) -> None:
    response = api.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert "/api/v1/whoami" in document["paths"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_an_unknown_path_is_a_json_404(api: ApiHarness) -> None:
    response = api.client.get("/api/v1/nothing-here", headers=api.headers(Role.VIEWER))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


def test_a_bad_query_parameter_is_422_naming_it(api: ApiHarness) -> None:
    response = api.client.get("/api/v1/resources?limit=0", headers=api.headers(Role.VIEWER))
    assert response.status_code == 422
    error = response.json()["error"]
    assert [field["field"] for field in error["fields"]] == ["query.limit"]
    assert "query.limit" in error["message"]


@pytest.mark.parametrize("role", list(Role))
def test_only_admins_list_tokens_and_a_refusal_is_403_audited(api: ApiHarness, role: Role) -> None:
    response = api.client.get("/api/v1/tokens", headers=api.headers(role))
    if role is Role.ADMIN:
        assert response.status_code == 200
        listed = response.json()
        assert sorted(token["role"] for token in listed) == sorted(r.value for r in Role)
        assert not any(secret_of(api.tokens[r]) in response.text for r in Role)
        return
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "PermissionDenied"
    assert f"role {role.value}" in error["message"]
    [entry] = AuditService(api.context).list(EntryFilter(action="api.authorize"))
    assert entry["outcome"] == "refused"
    assert entry["actor"].startswith(f"token:test-{role.value}:")
    assert entry["subject"] == "/api/v1/tokens"

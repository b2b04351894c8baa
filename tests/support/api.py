"""What API tests share: an application over a fresh catalog and a token per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from strongroom.api.app import create_app
from strongroom.api.limits import FailedLogins
from strongroom.engine.clock import ManualClock
from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService, split_token
from strongroom.services.context import AppContext


@dataclass
class ApiHarness:
    """A context, its API application under a test client, and one token per role."""

    context: AppContext
    client: TestClient
    clock: ManualClock
    tokens: dict[Role, str] = field(default_factory=dict)

    def headers(self, role: Role) -> dict[str, str]:
        """The Authorization header of ``role``'s token."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def api_harness(home: Path, *, failed_logins: FailedLogins | None = None) -> Iterator[ApiHarness]:
    """Yield an :class:`ApiHarness` over a catalog under ``home``; close it afterwards."""
    clock = ManualClock()
    context = AppContext(home=home, clock=clock)
    service = TokenService(context)
    tokens = {role: service.create(role, name=f"test-{role.value}").token for role in Role}
    app = create_app(context, failed_logins=failed_logins, max_body_bytes=64 * 1024)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ApiHarness(context, client, clock, tokens)
    context.close()


def secret_of(token: str) -> str:
    """The secret part of a token's text (what must never be logged or stored)."""
    parts = split_token(token)
    if parts is None:
        raise ValueError("not a token")
    return parts[1]

"""A console over a small real world: a home with a SQLite catalog, a local vault ``main``,
declared resources, one token per role, and the application under a test client."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from strongroom.api.app import create_app
from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService
from tests.unit.services.operations_support import Ops

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    """The world (``ops``), a token per role and a client per role (not logged in yet)."""

    ops: Ops
    tokens: dict[Role, str] = field(default_factory=dict)
    clients: list[TestClient] = field(default_factory=list)

    def client(self, *, base_url: str = "http://testserver") -> TestClient:
        """A fresh browser: its own cookies."""
        client = TestClient(
            create_app(self.ops.context),
            base_url=base_url,
            raise_server_exceptions=False,
            follow_redirects=False,
        )
        self.clients.append(client)
        return client

    def login(self, role: Role, client: TestClient | None = None) -> TestClient:
        """A browser logged in with ``role``'s token."""
        browser = client or self.client()
        response = browser.post(
            "/console/login",
            data={"token": self.tokens[role], "csrf": csrf_of(browser.get("/console/login").text)},
        )
        assert response.status_code == 303, response.text
        return browser

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.ops.close()


def csrf_of(page: str) -> str:
    """The CSRF token of the first form of ``page``."""
    found = _CSRF.search(page)
    assert found is not None, page
    return found.group(1)


def console_world(root: Path) -> Console:
    """A :class:`Console` with files resource ``docs`` over some files under ``root``."""
    ops = Ops(root)
    data = root / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    (data / "b.txt").write_text("beta\n" * 100)
    ops.files("docs", data)
    service = TokenService(ops.context)
    tokens = {role: service.create(role, name=f"console-{role.value}").token for role in Role}
    return Console(ops, tokens)

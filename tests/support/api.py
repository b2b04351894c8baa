"""What API tests share: an application over a fresh catalog and a token per role."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from strongroom.api.app import create_app
from strongroom.api.limits import FailedLogins
from strongroom.engine.clock import ManualClock
from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService, split_token
from strongroom.services.context import AppContext
from tests.support.peers import free_port
from tests.support.waiting import wait_for


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


@contextmanager
def served_process(home: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``strongroom serve --api-address`` on a free loopback port for ``home``; yield
    the API's base URL (``http://127.0.0.1:PORT/api/v1``) and the process, then stop it
    with SIGTERM (its exit code and stderr are the caller's to check, via the process)."""
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom",
            "serve",
            "--tick",
            "1",
            "--api-address",
            address,
            *options,
        ],
        env={**os.environ, "STRONGROOM_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://{address}/api/v1"
    try:
        wait_for(lambda: _answers(f"{base}/openapi.json") or process.poll() is not None)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return False
    return True

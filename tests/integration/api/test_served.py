"""The API over real HTTP: uvicorn on a free loopback port, the same catalog, real logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strongroom import logs
from strongroom.api.app import create_app
from strongroom.api.server import ApiServer, serve_api
from strongroom.errors import ConfigError
from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService
from strongroom.services.context import AppContext
from tests.support.api import secret_of


@pytest.fixture
def served(context: AppContext) -> Iterator[ApiServer]:
    logs.configure("info")  # uvicorn's loggers follow strongroom's handler and level
    server = serve_api(create_app(context, max_body_bytes=1024), "127.0.0.1:0")
    yield server
    server.stop()


def test_a_request_is_served_and_its_token_never_logged(
    context: AppContext, served: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = TokenService(context).create(Role.OPERATOR, name="logged").token
    logs.configure("debug")
    caplog.set_level(logging.DEBUG)
    for name in ("strongroom", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addHandler(caplog.handler)
    base = f"http://127.0.0.1:{served.port}/api/v1"
    with httpx.Client(base_url=base, timeout=30) as client:
        good = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        bad = client.get("/whoami", headers={"Authorization": f"Bearer {token}x"})
    assert good.status_code == 200
    assert good.json()["role"] == "operator"
    assert bad.status_code == 401
    for name in ("strongroom", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).removeHandler(caplog.handler)
    captured = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert "/api/v1/whoami" in captured  # the access log is there ...
    assert "API login failed" in captured  # ... and the failed login ...
    secret = secret_of(token)
    assert secret not in captured  # ... but never the token
    assert token not in captured


def test_an_oversized_body_is_413_and_not_read(context: AppContext, served: ApiServer) -> None:
    token = TokenService(context).create(Role.ADMIN).token
    with httpx.Client(timeout=30) as client:
        response = client.post(
            f"http://127.0.0.1:{served.port}/api/v1/whoami",
            headers={"Authorization": f"Bearer {token}"},
            content=b"x" * 4096,
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "RequestTooLarge"


def test_a_remote_address_is_refused_without_allow_remote(context: AppContext) -> None:
    with pytest.raises(ConfigError, match="reachable from other machines"):
        serve_api(create_app(context), "0.0.0.0:0")
    with pytest.raises(ConfigError, match="both a certificate"):
        serve_api(create_app(context), "127.0.0.1:0", tls_cert=Path("/x.pem"))


def test_a_port_in_use_is_a_config_error(context: AppContext, served: ApiServer) -> None:
    with pytest.raises(ConfigError, match="cannot serve the API"):
        serve_api(create_app(context), f"127.0.0.1:{served.port}")


def test_a_chunked_body_over_the_limit_is_413(context: AppContext, served: ApiServer) -> None:
    token = TokenService(context).create(Role.ADMIN).token

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"y" * 512

    with httpx.Client(timeout=30) as client:
        response = client.post(
            f"http://127.0.0.1:{served.port}/api/v1/jobs/backup",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            content=chunks(),
        )
    assert response.status_code == 413

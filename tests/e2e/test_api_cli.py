"""``strongroom token`` and ``strongroom serve --api-address`` as a user runs them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from tests.support.api import secret_of, served_process
from tests.support.cli import strongroom, text


def test_a_token_made_by_the_cli_opens_the_served_api_until_revoked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = strongroom(
        home, "token", "create", "--role", "auditor", "--name", "evidence", "--expires-in", "30d"
    )
    assert created.returncode == 0, text(created)
    token = created.stdout.decode().strip()
    assert token.startswith("srt_")
    assert "shown only now" in created.stderr.decode()

    listed = strongroom(home, "token", "list", "--output", "json")
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["role"], row["state"]) == ("evidence", "auditor", "active")
    assert secret_of(token) not in listed.stdout.decode()

    with served_process(home) as (base, process):
        headers = {"Authorization": f"Bearer {token}"}
        whoami = httpx.get(f"{base}/whoami", headers=headers, timeout=30)
        assert whoami.status_code == 200
        assert whoami.json()["role"] == "auditor"

        revoked = strongroom(home, "token", "revoke", row["id"])
        assert revoked.returncode == 0, text(revoked)
        assert httpx.get(f"{base}/whoami", headers=headers, timeout=30).status_code == 401
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors.decode()
    assert f"API at {base}" in errors.decode()
    assert secret_of(token) not in errors.decode()


def test_serve_refuses_a_remote_api_address_without_allow_remote(tmp_path: Path) -> None:
    refused = strongroom(tmp_path / "home", "serve", "--once", "--api-address", "0.0.0.0:8470")
    assert refused.returncode == 2
    assert "reachable from other machines" in text(refused)


def test_an_unknown_role_is_refused_naming_the_roles(tmp_path: Path) -> None:
    refused = strongroom(tmp_path / "home", "token", "create", "--role", "root")
    assert refused.returncode == 2
    assert "viewer, operator, restorer, admin, auditor" in text(refused)

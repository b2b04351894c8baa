"""A real ``strongroom serve`` with the API and console on a free loopback port, a declared
world (a files resource, a local vault, a plan), a token per role, and headless Chromium.

The server runs as its own process, as a user starts it; its jobs run in its daemon. The
browser is Debian's Chromium driven by Playwright (``chromium_service``: under CI=true a
missing browser fails these tests).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import sync_playwright

from tests.support.cli import strongroom, text
from tests.support.peers import free_port
from tests.support.services import ChromiumService
from tests.support.waiting import wait_for

ROLES = ("viewer", "operator", "restorer", "admin", "auditor")
RULE = "daily/nightly"


@dataclass(frozen=True)
class ServedConsole:
    """Where the console answers, the home behind it and a token per role."""

    url: str
    home: Path
    data: Path
    tokens: dict[str, str]


def _config(root: Path, data: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "retry": {"max_attempts": 1, "interval_seconds": 1},
        "vaults": {
            "main": {
                "description": "Recovery points of the browser tests.",
                "url": (root / "vaults" / "main").as_uri(),
                "key": {"provider": "key-file", "path": str(root / "keys" / "main.key")},
                "cold_tier": {"kind": "same-store"},
            }
        },
        "resources": {
            "docs": {
                "type": "files",
                "description": "Documents served by the intranet.",
                "paths": [str(data)],
                "tags": {"Environment": "production", "BackupEnabled": "true"},
            },
            "orders-db": {
                "type": "sqlite",
                "description": "A database file that is not there: its backups fail.",
                "path": str(root / "missing" / "orders.db"),
                "tags": {"Environment": "production"},
            },
        },
        "plans": {
            "daily": {
                "rules": [
                    {
                        "name": "nightly",
                        "schedule": "cron(0 3 * * ? *)",
                        "start_window_minutes": 60,
                        "completion_window_minutes": 240,
                        "target_vault": "main",
                        "lifecycle": {"move_to_cold_after_days": 7, "delete_after_days": 30},
                    }
                ],
                "selections": [
                    {
                        "name": "production",
                        "list_of_tags": [{"key": "Environment", "value": "production"}],
                    }
                ],
            }
        },
    }


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return False
    return True


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedConsole]:
    """``strongroom serve --api-address`` over an applied config, until the module ends."""
    root = tmp_path_factory.mktemp("console")
    home = root / "home"
    data = root / "data"
    (data / "reports").mkdir(parents=True)
    (data / "reports" / "q3.txt").write_text("revenue up\n" * 200)
    (data / "readme.md").write_text("# intranet\n")
    config = root / "strongroom.yaml"
    config.write_text(yaml.safe_dump(_config(root, data), sort_keys=False))
    applied = strongroom(home, "apply", "-f", str(config))
    assert applied.returncode == 0, text(applied)
    tokens = {}
    for role in ROLES:
        created = strongroom(home, "token", "create", "--role", role, "--name", f"browser-{role}")
        assert created.returncode == 0, text(created)
        tokens[role] = created.stdout.decode().strip()
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "strongroom", "serve", "--tick", "1", "--api-address", address],
        env={**os.environ, "STRONGROOM_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://{address}/console"
    try:
        wait_for(lambda: _answers(f"{url}/login") or process.poll() is not None)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        yield ServedConsole(url, home, data, tokens)
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors.decode()
    for token in tokens.values():
        assert token not in errors.decode()


@pytest.fixture(scope="module")
def browser(chromium_service: ChromiumService) -> Iterator[Any]:
    """One headless Chromium for the module; each test opens its own context (cookies)."""
    with sync_playwright() as playwright:
        launched = chromium_service.connect(playwright)
        try:
            yield launched
        finally:
            launched.close()

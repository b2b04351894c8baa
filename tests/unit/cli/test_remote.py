"""``--server``: a command that cannot run against a server is refused, never run locally."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.cli import lean
from tests.support.cli import strongroom, text

TOKEN = {"STRONGROOM_TOKEN": "srt_0123456789ab_not-a-real-one"}


@pytest.mark.parametrize(
    "command",
    [
        ["token", "list"],
        ["vault", "points", "main"],
        ["report", "compliance", "--framework", "soc2"],
        ["apply", "-f", "strongroom.yaml"],
    ],
)
def test_a_local_only_command_is_refused_with_server(tmp_path: Path, command: list[str]) -> None:
    refused = strongroom(tmp_path, "--server", "http://127.0.0.1:9", *command, env=TOKEN)
    assert refused.returncode == 2, text(refused)
    assert "does not run against a server" in text(refused)
    assert not (tmp_path / "catalog.db").exists()


def test_server_without_a_token_is_refused(tmp_path: Path) -> None:
    refused = strongroom(tmp_path, "--server", "http://127.0.0.1:9", "list-backups")
    assert refused.returncode == 2
    assert "STRONGROOM_TOKEN" in text(refused)


def test_the_lean_vault_path_leaves_a_server_to_the_full_cli() -> None:
    argv = ["vault", "points", "main"]
    assert lean.parse(argv, {}) is not None
    assert lean.parse(argv, {"STRONGROOM_SERVER": "http://127.0.0.1:9"}) is None

"""The console script recognises ``vault VERB NAME`` command lines before parsing them for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.cli.entry import VaultCommand, parse_vault_command


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["vault", "restore", "main", "abc123", "--to", "-"], VaultCommand("main", None, None)),
        (
            ["--home", "/h", "--debug", "vault", "points", "main", "--passphrase-env", "PASS"],
            VaultCommand("main", Path("/h"), "PASS"),
        ),
        (
            ["--home=/h", "--log-level=info", "vault", "verify", "main", "--passphrase-env=P"],
            VaultCommand("main", Path("/h"), "P"),
        ),
        (["vault", "points", "main", "--passphrase-env"], VaultCommand("main", None, None)),
    ],
)
def test_vault_commands_are_recognised(argv: list[str], expected: VaultCommand) -> None:
    assert parse_vault_command(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--version"],
        ["vault"],
        ["vault", "points"],
        ["vault", "--help"],
        ["vault", "points", "--help"],
        ["restore", "abc", "--wait"],
        ["--unknown", "vault", "points", "main"],
        ["vault", "restore", "main", "x", "--key-file", "/k"],  # key material: no passphrase
        ["vault", "restore", "main", "x", "--key-file=/k"],
    ],
)
def test_other_command_lines_start_nothing(argv: list[str]) -> None:
    assert parse_vault_command(argv) is None

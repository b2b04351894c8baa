"""``vault points`` and ``vault restore`` print the same bytes and exit the same way on the
lean path (the console script) as through the Typer command tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import strongroom, text

pytestmark = pytest.mark.e2e

PASS = {"VAULT_PASS": "lean path passphrase", "OTHER_PASS": "not the passphrase"}
KEY = ("--passphrase-env", "VAULT_PASS")
TYPER_PATH = "import sys; from strongroom.cli.app import main; main(sys.argv[1:])"


def _run(home: Path, lean: bool, *args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run a command line on the lean path (the console script's) or the Typer path."""
    environment = {**os.environ, "STRONGROOM_HOME": str(home), "COLUMNS": "200", **PASS}
    prefix = ["-m", "strongroom"] if lean else ["-c", TYPER_PATH]
    return subprocess.run(
        [sys.executable, *prefix, *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        timeout=300,
        check=False,
    )


def _both(
    home: Path, *args: str, cwd: Path
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """Run a command line on the lean path and on the Typer path; return both runs."""
    return _run(home, True, *args, cwd=cwd), _run(home, False, *args, cwd=cwd)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    url = (tmp_path / "vault").as_uri()
    created = strongroom(home, "vault", "create", "v", "--url", url, *KEY, env=PASS)
    assert created.returncode == 0, text(created)
    for number in range(2):
        data = bytes(range(256)) * (200 * (number + 1))
        stored = strongroom(
            home, "vault", "backup", "v", "-", "--tag", f"n={number}", *KEY, env=PASS, stdin=data
        )
        assert stored.returncode == 0, text(stored)
    return home


def _point(home: Path) -> str:
    listed = strongroom(home, "vault", "points", "v", "-o", "json", *KEY, env=PASS)
    assert listed.returncode == 0, text(listed)
    return str(json.loads(listed.stdout)[0]["id"])


def test_both_paths_print_the_same_and_exit_the_same(home: Path, tmp_path: Path) -> None:
    point = _point(home)
    command_lines = [
        ("vault", "points", "v", *KEY),
        ("vault", "points", "v", "--output", "json", *KEY),
        ("--log-json", "vault", "points", "v", "-o", "json", *KEY),
        ("vault", "restore", "v", point[:12], "--to", "-", *KEY),
        ("vault", "restore", "v", point, "--to", "-", "--stream", "stdin", *KEY),
        ("vault", "restore", "v", point, "--to", "-", "--stream", "absent", *KEY),
        ("vault", "restore", "v", "0000", "--to", "-", *KEY),
        ("vault", "points", "nosuchvault", *KEY),
        ("vault", "points", "v", "--passphrase-env", "OTHER_PASS"),
        ("vault", "points", "v", "--passphrase-env", "UNSET_VARIABLE"),
        ("vault", "restore", "v", point, "--to", "exists", *KEY),
    ]
    (tmp_path / "exists").write_bytes(b"already here")
    for args in command_lines:
        lean_run, typer_run = _both(home, *args, cwd=tmp_path)
        shown = " ".join(args)
        assert lean_run.returncode == typer_run.returncode, f"{shown}\n{text(lean_run)}"
        assert lean_run.stdout == typer_run.stdout, shown
        assert lean_run.stderr == typer_run.stderr, shown
    assert (tmp_path / "exists").read_bytes() == b"already here"


def test_a_restore_to_a_file_says_the_same_on_both_paths(home: Path, tmp_path: Path) -> None:
    point = _point(home)
    args = ("vault", "restore", "v", point, "--to", "restored", *KEY)
    lean_run = _run(home, True, *args, cwd=tmp_path)
    assert lean_run.returncode == 0, text(lean_run)
    (tmp_path / "restored").rename(tmp_path / "restored-lean")
    typer_run = _run(home, False, *args, cwd=tmp_path)
    assert typer_run.returncode == 0, text(typer_run)
    assert lean_run.stdout == typer_run.stdout == b""
    assert lean_run.stderr == typer_run.stderr
    assert b"restored" in lean_run.stderr
    expected = bytes(range(256)) * 200
    assert (tmp_path / "restored-lean").read_bytes() == expected
    assert (tmp_path / "restored").read_bytes() == expected

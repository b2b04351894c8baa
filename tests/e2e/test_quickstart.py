"""The newcomer's first command, run as a user runs it: a real process, a fresh home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def strongroom(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STRONGROOM_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "strongroom", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_quickstart_backs_up_verifies_restores_and_matches(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = strongroom(home, "quickstart")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "quickstart passed" in result.stdout
    for step in ("setup", "sample data", "backup", "verify", "restore", "compare"):
        assert step in result.stdout
    assert (home / "catalog.db").is_file()
    sample = home / "sample"
    restored = home / "restore" / "files" / sample.relative_to(sample.anchor)
    blob = Path("docs") / "nested" / "blob.bin"
    assert (restored / blob).read_bytes() == (sample / blob).read_bytes()
    assert (home / "restore" / "shop.db").is_file()
    assert (home / "vaults" / "default" / "config").is_file()
    # the vault holds no readable sample bytes: everything is encrypted
    needle = (sample / "docs" / "notes.md").read_bytes()[:64]
    for stored in (home / "vaults" / "default").rglob("*"):
        if stored.is_file():
            assert needle not in stored.read_bytes()


def test_quickstart_twice_in_one_home_passes_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert strongroom(home, "quickstart").returncode == 0
    second = strongroom(home, "quickstart")
    assert second.returncode == 0, second.stdout + second.stderr


def test_quickstart_in_an_unwritable_home_fails_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    result = strongroom(blocker / "home", "quickstart")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    shutil.rmtree(tmp_path, ignore_errors=True)

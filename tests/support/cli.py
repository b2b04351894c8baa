"""Run the strongroom CLI as a user does: a real process with its own home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def strongroom(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m strongroom ARGS`` with STRONGROOM_HOME=home; never raises on failure."""
    environment = {**os.environ, "STRONGROOM_HOME": str(home), "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "strongroom", *args],
        env=environment,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def text(result: subprocess.CompletedProcess[bytes]) -> str:
    """Both outputs of a run, decoded, for assertion messages."""
    return result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")

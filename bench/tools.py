"""The other tools a benchmark compares with, at pinned versions, built once into a cache.

restic and kopia are built from the Go module proxy (``go`` must be on PATH) into
``~/.cache/strongroom-dev/bin`` (``STRONGROOM_DEV_CACHE`` moves it); borg, zstd and GNU
time come from Debian (``apt-get``, as root). :func:`prepare` builds or installs what is
missing and puts the cache first on ``PATH`` for the commands the benchmark runs.

kopia's version list is refused by the proxy, so ``go install kopia@v0.23.1`` cannot
resolve it: the exact module version is downloaded with ``go mod download`` and built
inside the downloaded module folder (with the version stamped as kopia's Makefile does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from measure import require

RESTIC_VERSION: Final = "v0.19.1"
KOPIA_VERSION: Final = "v0.23.1"


def cache_bin() -> Path:
    """Where the built tools live."""
    root = os.environ.get("STRONGROOM_DEV_CACHE") or str(Path.home() / ".cache/strongroom-dev")
    return Path(root) / "bin"


def _go_env(target: Path) -> dict[str, str]:
    return {**os.environ, "GOBIN": str(target), "GOFLAGS": "-buildvcs=false"}


def _has_version(binary: Path, arguments: list[str], version: str) -> bool:
    if not binary.is_file():
        return False
    result = subprocess.run(
        [str(binary), *arguments], capture_output=True, text=True, check=False, timeout=60
    )
    return version.lstrip("v") in result.stdout


def build_restic(target: Path) -> Path:
    """Return restic RESTIC_VERSION in ``target``, built with ``go install`` if missing."""
    binary = target / "restic"
    if not _has_version(binary, ["version"], RESTIC_VERSION):
        subprocess.run(
            ["go", "install", f"github.com/restic/restic/cmd/restic@{RESTIC_VERSION}"],
            check=True,
            env=_go_env(target),
        )
    return binary


def build_kopia(target: Path) -> Path:
    """Return kopia KOPIA_VERSION in ``target``, built in its downloaded module if missing."""
    binary = target / "kopia"
    if _has_version(binary, ["--version"], KOPIA_VERSION):
        return binary
    downloaded = subprocess.run(
        ["go", "mod", "download", "-json", f"github.com/kopia/kopia@{KOPIA_VERSION}"],
        check=True,
        capture_output=True,
        text=True,
        env=_go_env(target),
    )
    module = Path(json.loads(downloaded.stdout)["Dir"])
    stamp = f"-X github.com/kopia/kopia/repo.BuildVersion={KOPIA_VERSION.lstrip('v')}"
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags", f"-s -w {stamp}", "-o", str(binary), "."],
        check=True,
        cwd=module,
        env=_go_env(target),
    )
    return binary


def prepare(*, restic: bool = True, kopia: bool = True) -> None:
    """Make borg, zstd, GNU time and (when asked) restic and kopia available, the built
    ones first on this process's PATH (inherited by every command it runs)."""
    require("borg", "zstd", "time")
    target = cache_bin()
    target.mkdir(parents=True, exist_ok=True)
    if (restic or kopia) and shutil.which("go") is None:
        raise RuntimeError("building restic and kopia needs Go (go on PATH)")
    if restic:
        build_restic(target)
    if kopia:
        build_kopia(target)
    os.environ["PATH"] = f"{target}{os.pathsep}{os.environ.get('PATH', '')}"


def versions() -> dict[str, str]:
    """The first line each compared tool prints about its version."""
    commands = {
        "borg": ["borg", "--version"],
        "restic": ["restic", "version"],
        "kopia": ["kopia", "--version"],
        "zstd": ["zstd", "--version"],
    }
    found = {}
    for name, command in commands.items():
        if shutil.which(command[0]):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            found[name] = (result.stdout or result.stderr).strip().splitlines()[0]
    return found

"""What a test needs of the machine beyond the real servers: the right to mount a tmpfs,
``user.*`` extended attributes on the test folders.

Like a missing service (see ``tests.support.services``), a missing capability skips the
test with a message saying what it needs, and fails it under ``CI=true``: the CI machine
runs as root on a filesystem with extended attributes, so there every such test runs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Return True when running in CI (`CI=true`), where missing services fail tests."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(message: str) -> NoReturn:
    """Skip the calling test saying ``message``; under CI=true, fail it instead."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def mounted_tmpfs(mount_point: Path, size_bytes: int) -> Iterator[Path]:
    """Mount a fresh tmpfs of ``size_bytes`` on the empty folder ``mount_point``; yield it.

    Unmounted on exit. Mounting needs root (CAP_SYS_ADMIN); without it the test is
    :func:`unavailable`.
    """
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs on {mount_point}: {mounted.stderr.strip()} (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def supports_user_xattrs(folder: Path) -> bool:
    """Tell whether the file system of ``folder`` takes ``user.*`` extended attributes."""
    probe = folder / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.strongroom", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def require_user_xattrs(folder: Path) -> None:
    """Make the calling test :func:`unavailable` unless ``folder`` takes ``user.*`` xattrs."""
    if not supports_user_xattrs(folder):
        unavailable(
            f"the file system of {folder} takes no user.* extended attributes "
            "(ext4, xfs, btrfs, or tmpfs on Linux 6.6 and later do)"
        )

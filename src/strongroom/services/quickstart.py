"""``strongroom quickstart``: set up the embedded default and prove one backup end to end.

Steps: create ``STRONGROOM_HOME`` with a catalog and a local vault, create sample data,
back it up, verify the recovery point by reading all of it back, restore it to a scratch
folder and compare byte for byte. The report says what happened; ``ok`` is true only if
the restored data matched the source.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from strongroom.errors import ConfigError, IntegrityError
from strongroom.services.sample import create_sample, entry_digest, tree_digest


@dataclass(frozen=True)
class StepResult:
    """One quickstart step: its name, whether it passed, a detail line and its duration."""

    step: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class QuickstartReport:
    """What the quickstart did, step by step."""

    home: Path
    point_id: str = ""
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when every step passed (the restored data matched)."""
        return bool(self.steps) and all(step.ok for step in self.steps)


def run_quickstart(home: Path) -> QuickstartReport:
    """Run every step under ``home``; stop at the first failed step.

    Raises nothing for a failed comparison (the report says so); raises
    ``StrongroomError`` subclasses for setup problems (e.g. a home that cannot be written).
    """
    report = QuickstartReport(home=home)
    vault_root = home / "vaults" / "default"
    sample_root = home / "sample"
    restore_root = home / "restore"

    def timed(name: str, action: Callable[[], str]) -> bool:
        started = time.perf_counter()
        try:
            detail = action()
            ok = True
        except IntegrityError as error:
            detail, ok = str(error), False
        report.steps.append(StepResult(name, ok, detail, time.perf_counter() - started))
        return ok

    def setup() -> str:
        try:
            vault_root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"cannot create STRONGROOM_HOME at {home}: {error.strerror}",
                hint="Set STRONGROOM_HOME (or --home) to a folder you can write.",
            ) from error
        _open_catalog(home / "catalog.db").close()
        return f"catalog {home / 'catalog.db'}, vault {vault_root}"

    def sample() -> str:
        shutil.rmtree(sample_root, ignore_errors=True)
        create_sample(sample_root)
        digest = tree_digest(sample_root)
        return f"{sum(1 for kind in digest.values() if kind != 'dir')} files in {sample_root}"

    def backup() -> str:
        report.point_id, size = _backup_tree(sample_root, vault_root, home / "catalog.db")
        return f"recovery point {report.point_id}, {size:,} bytes"

    def verify() -> str:
        checked = _verify_point(vault_root / "points" / report.point_id)
        return f"read back and checked {checked} files"

    def restore() -> str:
        shutil.rmtree(restore_root, ignore_errors=True)
        shutil.copytree(vault_root / "points" / report.point_id / "data", restore_root)
        return f"restored to {restore_root}"

    def compare() -> str:
        expected, actual = tree_digest(sample_root), tree_digest(restore_root)
        if expected != actual:
            differing = sorted(set(expected.items()) ^ set(actual.items()))
            raise IntegrityError(f"restored data differs at {differing[0][0]}")
        return f"{len(expected)} entries identical"

    for name, action in (
        ("setup", setup),
        ("sample data", sample),
        ("backup", backup),
        ("verify", verify),
        ("restore", restore),
        ("compare", compare),
    ):
        if not timed(name, action):
            break
    return report


def _open_catalog(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS quickstart_points "
        "(id TEXT PRIMARY KEY, created_at TEXT NOT NULL, size INTEGER NOT NULL)"
    )
    return connection


def _backup_tree(source: Path, vault_root: Path, catalog: Path) -> tuple[str, int]:
    point_id = uuid.uuid4().hex
    staging = vault_root / "points" / f".{point_id}.partial"
    shutil.copytree(source, staging / "data", ignore=shutil.ignore_patterns("shop.db"))
    with (
        closing(sqlite3.connect(source / "shop.db")) as live,
        closing(sqlite3.connect(staging / "data" / "shop.db")) as copy,
    ):
        live.backup(copy)  # the online backup API gives a consistent copy of a live database
    digest = tree_digest(staging / "data")
    (staging / "manifest.json").write_text(json.dumps({"id": point_id, "files": digest}))
    staging.rename(vault_root / "points" / point_id)  # the single commit point
    size = sum(path.stat().st_size for path in source.rglob("*") if path.is_file())
    with closing(_open_catalog(catalog)) as connection, connection:
        connection.execute(
            "INSERT INTO quickstart_points VALUES (?, ?, ?)",
            (point_id, datetime.now(UTC).isoformat(), size),
        )
    return point_id, size


def _verify_point(point: Path) -> int:
    manifest = json.loads((point / "manifest.json").read_text())
    checked = 0
    for relative, expected in manifest["files"].items():
        path = point / "data" / relative
        if not path.exists() or entry_digest(path) != expected:
            raise IntegrityError(f"{relative} does not match its recorded SHA-256")
        checked += 1
    return checked

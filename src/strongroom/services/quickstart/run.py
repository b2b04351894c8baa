"""``strongroom quickstart``: set up the embedded default and prove backups end to end.

The quickstart runs strongroom's main job on the embedded default, through the same
services and job handlers as every other command: it creates ``STRONGROOM_HOME`` with
its SQLite catalog and an encrypted local vault (key file generated under
``HOME/keys``), creates sample data (files, and a SQLite database of orders), declares
them as two resources, backs each one up as a job, verifies each recovery point by
reading every byte and running its restore test, restores it into a scratch folder and
compares the result with the source. ``ok`` is true only if every restored byte matched.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.catalog.types import JobState
from strongroom.config.resources import FilesResource, SqliteResource
from strongroom.config.vaults import KeyFileKey, VaultConfig
from strongroom.engine.views import JobView
from strongroom.errors import ConfigError, IntegrityError, JobFailedError
from strongroom.services.context import AppContext
from strongroom.services.declare.resources import register_resource
from strongroom.services.jobs.operations import OperationsService
from strongroom.services.quickstart.sample import create_sample, entry_digest, tree_digest
from strongroom.services.vaults.service import VaultService

VAULT = "default"
FILES_RESOURCE = "sample-files"
DATABASE_RESOURCE = "sample-db"
DATABASE_FILE = "shop.db"


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
    point_ids: dict[str, str] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when every step passed (the restored data matched)."""
        return bool(self.steps) and all(step.ok for step in self.steps)


class QuickstartService:
    """``strongroom quickstart`` on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def run(self) -> QuickstartReport:
        """Run every step under ``context.home``; stop at the first failed step.

        A failed step is reported, not raised; setup problems (a home that cannot be
        written) raise ``StrongroomError`` subclasses.
        """
        context = self.context
        home = context.home
        report = QuickstartReport(home=home)
        sample_root = home / "sample"
        restore_root = home / "restore"
        operations = OperationsService(context)

        def timed(name: str, action: Callable[[], str]) -> bool:
            started = time.perf_counter()
            try:
                detail, ok = action(), True
            except (IntegrityError, JobFailedError) as error:
                detail, ok = str(error), False
            report.steps.append(StepResult(name, ok, detail, time.perf_counter() - started))
            return ok

        def setup() -> str:
            try:
                (home / "keys").mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ConfigError(
                    f"cannot create STRONGROOM_HOME at {home}: {error.strerror}",
                    hint="Set STRONGROOM_HOME (or --home) to a folder you can write.",
                ) from error
            vault_url = (home / "vaults" / VAULT).as_uri()
            key = KeyFileKey(provider="key-file", path=str(home / "keys" / f"{VAULT}.key"))
            VaultService(context).initialise(VAULT, VaultConfig(url=vault_url, key=key))
            return f"catalog {context.catalog.display_url}, vault {vault_url}"

        def sample() -> str:
            shutil.rmtree(sample_root, ignore_errors=True)
            create_sample(sample_root)
            with context.catalog.session() as session:
                files = FilesResource(
                    type="files", paths=[str(sample_root)], exclude=[DATABASE_FILE]
                )
                database = SqliteResource(type="sqlite", path=str(sample_root / DATABASE_FILE))
                register_resource(session, FILES_RESOURCE, files, context.now())
                register_resource(session, DATABASE_RESOURCE, database, context.now())
            digest = tree_digest(sample_root)
            count = sum(
                1 for path, kind in digest.items() if kind != "dir" and path != DATABASE_FILE
            )
            return f"{count} files and a SQLite database in {sample_root}"

        def backup() -> str:
            sizes = []
            for resource in (FILES_RESOURCE, DATABASE_RESOURCE):
                job = _run(operations, operations.start_backup(resource, vault=VAULT))
                result = job.result or {}
                report.point_ids[resource] = str(result["point_id"])
                sizes.append(f"{resource} -> {str(result['point_id'])[:12]}")
            return ", ".join(sizes)

        def verify() -> str:
            for point_id in report.point_ids.values():
                _run(
                    operations, operations.start_verify(point_id, read_data=True, restore_test=True)
                )
            return "read every byte back; restore tests passed"

        def restore() -> str:
            shutil.rmtree(restore_root, ignore_errors=True)
            restore_root.mkdir(parents=True)
            files_target = {"path": str(restore_root / "files")}
            database_target = {"path": str(restore_root / DATABASE_FILE)}
            _run(
                operations, operations.start_restore(report.point_ids[FILES_RESOURCE], files_target)
            )
            _run(
                operations,
                operations.start_restore(report.point_ids[DATABASE_RESOURCE], database_target),
            )
            return f"restored into {restore_root}"

        def compare() -> str:
            expected = {
                path: digest
                for path, digest in tree_digest(sample_root).items()
                if path != DATABASE_FILE
            }
            restored_files = restore_root / "files" / sample_root.relative_to(sample_root.anchor)
            actual = tree_digest(restored_files)
            if expected != actual:
                differing = sorted(set(expected.items()) ^ set(actual.items()))
                raise IntegrityError(f"restored data differs at {differing[0][0]}")
            source_db = entry_digest(sample_root / DATABASE_FILE)
            if entry_digest(restore_root / DATABASE_FILE) != source_db:
                raise IntegrityError(f"the restored {DATABASE_FILE} differs from the source")
            return (
                f"{len(expected)} entries identical byte for byte; {DATABASE_FILE} rows identical"
            )

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


def _run(operations: OperationsService, job: JobView) -> JobView:
    ended = operations.run(job.id)
    if ended.state is not JobState.COMPLETED:
        reason = ended.error.message if ended.error else ended.state.value
        raise JobFailedError(
            f"{ended.kind.value} job {ended.id[:8]} ended {ended.state.value}: {reason}"
        )
    return ended

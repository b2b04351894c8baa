"""The completion window: a backup still running when it closes is cancelled cleanly and
ends ABORTED, and the vault writer it was filling never becomes a recovery point."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strongroom.catalog import Catalog
from strongroom.catalog import points as catalog_points
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import JobContext, JobResult
from strongroom.engine.scheduler import Scheduler
from strongroom.engine.states import JobStateMachine
from strongroom.keys import KdfSettings, PassphraseProvider
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault, VaultSettings
from tests.support.scheduling import (
    CONTINUOUS,
    run_jobs,
    runs,
    seed_plan,
    seed_resources,
)
from tests.support.waiting import PATIENCE
from tests.unit.engine.conftest import MakeExecutor

SETTINGS = VaultSettings(
    chunk_min_size=1024, chunk_avg_size=4096, chunk_max_size=16384, pack_target_size=64 * 1024
)


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    with Vault.create(
        MemoryStore(),
        PassphraseProvider("correct horse battery staple"),
        SETTINGS,
        kdf=KdfSettings(memory_kib=64, iterations=1, lanes=1),
        cache_dir=tmp_path / "cache",
    ) as opened:
        yield opened


def test_a_backup_running_when_its_completion_window_closes_is_aborted_without_a_point(
    catalog: Catalog,
    machine: JobStateMachine,
    clock: ManualClock,
    make_executor: MakeExecutor,
    vault: Vault,
) -> None:
    seed_resources(catalog)
    seed_plan(catalog, [CONTINUOUS])
    writing = threading.Event()
    chunks = {"orders-db": 0}

    def backup(context: JobContext) -> JobResult:
        """A slow backup: streams data until done (cache) or cancelled (orders-db)."""
        resource = context.job.resource or "?"
        with vault.writer() as writer:  # an exception leaves the block: the writer aborts
            with writer.open_stream("dump") as stream:
                for index in range(10**6):
                    context.cancel.raise_if_cancelled()
                    stream.write(bytes([index % 251]) * 8192)
                    if resource == "cache" and index == 3:
                        break
                    if resource == "orders-db":
                        chunks["orders-db"] = index
                        writing.set()
                        context.cancel.wait(0.005)
            point = writer.commit(tags={"resource": resource})
        return JobResult({"point_id": point})

    executor = make_executor(
        {JobKind.BACKUP: backup}, heartbeat_interval=3600.0, lease_seconds=86_400
    )
    scheduler = Scheduler(machine, executor=executor)
    scheduler.tick()
    clock.set(datetime(2030, 1, 1, 18, tzinfo=UTC))
    scheduler.tick()
    executor.run_once()
    assert writing.wait(PATIENCE)
    # The short backup must have finished before its window closes too; on a loaded
    # machine it can still be queued, so wait for it rather than race it.
    deadline = time.monotonic() + PATIENCE
    while True:
        (started,) = runs(catalog)
        states = {job.resource: job.state for job in run_jobs(catalog, started.id)}
        if states.get("cache") is JobState.COMPLETED:
            break
        assert time.monotonic() < deadline, f"the short backup never completed: {states}"
        executor.run_once()
        time.sleep(0.05)

    clock.set(datetime(2030, 1, 1, 20, 59, tzinfo=UTC))
    assert scheduler.tick().cancelled == ()  # one minute of the window left
    clock.set(datetime(2030, 1, 1, 21, tzinfo=UTC))
    report = scheduler.tick()
    executor.run_until_idle(timeout=PATIENCE)
    scheduler.tick()

    (run,) = runs(catalog)
    jobs = {job.resource: job for job in run_jobs(catalog, run.id)}
    aborted = jobs["orders-db"]
    assert report.cancelled == (aborted.id,)
    assert aborted.state is JobState.ABORTED
    assert aborted.error is not None
    assert aborted.error.message == "completion window closed at 2030-01-01T21:00:00+00:00"
    assert chunks["orders-db"] > 0  # it really was part way through
    assert jobs["cache"].state is JobState.COMPLETED
    # Only the backup that finished made a recovery point; the aborted one left none.
    assert len(vault.point_ids()) == 1
    assert vault.point(str(vault.point_ids()[0])).tags["resource"] == "cache"
    assert run.state is JobState.FAILED
    assert run.summary["counts"]["aborted"] == 1
    with catalog.session(readonly=True) as session:
        assert catalog_points.list_recovery_points(session) == []  # the fake records none


def test_a_job_of_a_dead_worker_whose_completion_window_closed_is_aborted_by_recovery(
    catalog: Catalog, machine: JobStateMachine, clock: ManualClock, make_executor: MakeExecutor
) -> None:
    seed_resources(catalog)
    seed_plan(catalog, [CONTINUOUS])
    scheduler = Scheduler(machine)
    scheduler.tick()
    clock.set(datetime(2030, 1, 1, 18, tzinfo=UTC))
    scheduler.tick()
    with machine.work() as work:
        while work.claim(owner="dead-worker", kinds=[JobKind.BACKUP], lease_seconds=60):
            pass

    clock.advance(timedelta(hours=4))
    make_executor({JobKind.BACKUP: lambda context: JobResult()}).run_until_idle(timeout=PATIENCE)
    scheduler.tick()

    (run,) = runs(catalog)
    assert {job.state for job in run_jobs(catalog, run.id)} == {JobState.ABORTED}
    assert run.state is JobState.FAILED

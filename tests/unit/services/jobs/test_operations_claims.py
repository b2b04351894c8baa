"""Who runs which job, and how many at once: the applied ``concurrency`` section holds for
the daemon and for ``--wait``; ``--wait`` runs only its own job; a backup whose worker lost
its lease between committing the point and ending the job leaves one catalog point."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from strongroom.catalog.models import Job
from strongroom.catalog.settings import (
    ConcurrencyLimits,
    read_concurrency_limits,
    write_concurrency_limits,
)
from strongroom.catalog.types import JobKind, JobState
from strongroom.daemon.compose import open_daemon
from strongroom.engine.context import Handler, JobContext, JobResult
from strongroom.engine.daemon import DaemonSettings
from strongroom.engine.recovery import recover_expired_leases
from strongroom.engine.views import JobView
from strongroom.services.context import AppContext
from strongroom.services.declare.apply import ApplyService
from strongroom.services.jobs import operations
from strongroom.services.jobs.handlers import handlers
from strongroom.services.jobs.operations import OperationsService
from tests.support.catalog import most_running_at_once
from tests.support.data import make_database, make_tree
from tests.unit.services.apply_support import loaded
from tests.unit.services.operations_support import FAST_RETRY, Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    yield world
    world.close()


def config(root: Path, concurrency: str) -> str:
    """A vault, three files resources and one sqlite resource, and ``concurrency``."""
    for name in ("a", "b", "c"):
        if not (root / name).exists():
            make_tree(root / name, seed=ord(name))
    if not (root / "app.db").exists():
        make_database(root / "app.db")
    return f"""\
version: 1
concurrency: {concurrency}
vaults:
  main:
    url: {(root / "vault").as_uri()}
    key: {{provider: key-file, path: {root / "keys" / "main"}}}
resources:
  files-a: {{type: files, paths: [{root / "a"}]}}
  files-b: {{type: files, paths: [{root / "b"}]}}
  files-c: {{type: files, paths: [{root / "c"}]}}
  app-db: {{type: sqlite, path: {root / "app.db"}}}
"""


def run_with_the_daemon(context: AppContext, resources: list[str]) -> list[str]:
    """Queue a backup of each resource (as 'start-backup' without --wait) and let the
    daemon of 'strongroom serve --once --workers 4' run them; return the job ids."""
    service = OperationsService(context)
    job_ids = [service.start_backup(name, "main").id for name in resources]
    daemon = open_daemon(context, DaemonSettings(workers=4, poll_interval=0.05))
    daemon.run(once=True)
    assert {service.jobs.get(job_id).state for job_id in job_ids} == {JobState.COMPLETED}
    return job_ids


def test_the_daemon_keeps_the_applied_global_limit(tmp_path: Path) -> None:
    context = AppContext(home=tmp_path / "home")
    try:
        ApplyService(context).apply(loaded(config(tmp_path, "{global: 1}")))
        with context.catalog.session(readonly=True) as session:
            assert read_concurrency_limits(session) == ConcurrencyLimits(max_running=1)

        run_with_the_daemon(context, ["files-a", "files-b", "files-c", "app-db"])

        assert most_running_at_once(context.catalog) == 1
    finally:
        context.close()


def test_the_daemon_keeps_the_applied_per_type_limit(tmp_path: Path) -> None:
    context = AppContext(home=tmp_path / "home")
    try:
        ApplyService(context).apply(
            loaded(config(tmp_path, "{global: 4, per_resource_type: {files: 1}}"))
        )

        job_ids = run_with_the_daemon(context, ["files-a", "files-b", "files-c", "app-db"])

        assert most_running_at_once(context.catalog, job_ids[:3]) == 1
    finally:
        context.close()


def test_a_changed_limit_reaches_a_running_daemon_at_its_next_claim(tmp_path: Path) -> None:
    context = AppContext(home=tmp_path / "home")
    try:
        service = ApplyService(context)
        service.apply(loaded(config(tmp_path, "{global: 4}")))
        daemon = open_daemon(context, DaemonSettings(workers=4, poll_interval=0.05))
        report = service.apply(loaded(config(tmp_path, "{global: 1}")))
        assert [(c.action, c.kind, c.name, c.fields) for c in report.changes] == [
            ("update", "settings", "concurrency", ("global",))
        ]
        operations_service = OperationsService(context)
        job_ids = [
            operations_service.start_backup(name, "main").id for name in ["files-a", "files-b"]
        ]

        daemon.run(once=True)

        assert {operations_service.jobs.get(job_id).state for job_id in job_ids} == {
            JobState.COMPLETED
        }
        assert most_running_at_once(context.catalog) == 1
    finally:
        context.close()


def test_wait_runs_its_own_job_and_leaves_an_older_queued_one_to_the_daemon(
    ops: Ops, tmp_path: Path
) -> None:
    ops.files("older", make_tree(tmp_path / "older"))
    ops.files("mine", make_tree(tmp_path / "mine", seed=8))
    older = ops.service.start_backup("older", "main")
    mine = ops.service.start_backup("mine", "main")

    ended = ops.run(mine)

    assert ended.state is JobState.COMPLETED
    assert ops.service.jobs.get(older.id).state is JobState.PENDING
    assert [t.to_state for t in ops.service.jobs.transitions(older.id)] == [
        JobState.CREATED,
        JobState.PENDING,
    ]
    assert [point.resource for point in ops.service.list_recovery_points()] == ["mine"]


def test_wait_keeps_the_stored_limits_too(ops: Ops, tmp_path: Path) -> None:
    ops.files("busy", make_tree(tmp_path / "busy"))
    ops.files("mine", make_tree(tmp_path / "mine", seed=8))
    with ops.context.catalog.session() as session:
        write_concurrency_limits(session, ConcurrencyLimits(max_running=1), at=ops.context.now())
    busy = ops.service.start_backup("busy", "main")
    with ops.service.machine.work() as work:  # the daemon runs it (and never ends it here)
        assert work.claim(owner="the-daemon", kinds=[JobKind.BACKUP], lease_seconds=600)
    mine = ops.service.start_backup("mine", "main")

    seen: list[JobView] = []

    def watch(job: JobView) -> None:
        seen.append(job)
        if len(seen) == 4:  # several polls with the slot taken: the limit held
            assert {view.state for view in seen} == {JobState.PENDING}
            ops.service.machine.transition(
                busy.id,
                JobState.ABORTED,
                reason="the daemon stopped it",
                expected=JobState.RUNNING,
            )

    ended = ops.service.run(mine.id, on_update=watch, poll_interval=0.05)

    assert ended.state is JobState.COMPLETED
    assert len(seen) > 4
    assert most_running_at_once(ops.context.catalog) == 1


def lose_the_lease_after_the_first_attempt(
    ops: Ops, real: Callable[[AppContext], dict[JobKind, Handler]], recovered_by: str
) -> Callable[[AppContext], dict[JobKind, Handler]]:
    """Handlers whose backup, on attempt 1, commits its point to the vault and then loses
    its lease (the job is recovered) before the executor can end the job.

    ``recovered_by`` says who recovers it: ``"another worker"`` (this thread, right away;
    the executor's own loop may get there first, and either is the same recovery) or
    ``"the executor's loop"`` (this thread waits until the loop of the executor running
    the job has recovered it: the interleaving in which this test once failed, #12).
    """

    def made(context: AppContext) -> dict[JobKind, Handler]:
        found = real(context)
        backup = found[JobKind.BACKUP]

        def stalling_backup(job: JobContext) -> JobResult:
            result = backup(job)
            if job.job.attempt == 1:
                lose_the_lease(ops, job.job.id, recover_here=recovered_by == "another worker")
            return result

        return {**found, JobKind.BACKUP: stalling_backup}

    return made


def lose_the_lease(ops: Ops, job_id: str, *, recover_here: bool) -> None:
    """Expire the lease of RUNNING job ``job_id`` until the job is recovered.

    With ``recover_here`` this thread recovers it as another worker would (the executor's
    own loop may get there first: either is the same recovery); without, the executor's
    loop does. The lease is expired again on each round because the executor's heartbeat
    may renew it between the expiry and the recovery. Waits for an event, not a duration:
    the bound on rounds only stops a hang.
    """
    machine = ops.service.machine
    for _ in range(60_000):
        with ops.context.catalog.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.RUNNING)
                .values(lease_expires_at=machine.clock.now() - timedelta(seconds=1))
            )
        if recover_here:
            # No assertion on what it returns: a failure raised here would be the
            # handler's own and leave the committed point behind, as no real run does.
            recover_expired_leases(machine)
        if machine.get(job_id).state is not JobState.RUNNING:
            return
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} was never recovered")


@pytest.mark.parametrize("recovered_by", ["another worker", "the executor's loop"])
def test_a_backup_that_lost_its_lease_after_committing_leaves_one_catalog_point(
    ops: Ops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recovered_by: str
) -> None:
    monkeypatch.setattr(
        operations, "handlers", lose_the_lease_after_the_first_attempt(ops, handlers, recovered_by)
    )
    ops.files("docs", make_tree(tmp_path / "data"))

    job = ops.backup("docs", retry=FAST_RETRY)

    assert (job.state, job.attempt) == (JobState.COMPLETED, 2), job.error
    points = ops.service.list_recovery_points(resource="docs")
    assert [(point.id, point.job_id) for point in points] == [(job.result["point_id"], job.id)]
    # The first attempt's manifest was removed from the vault: it holds only the recorded one.
    assert [point.id for point in ops.vaults.points("main")] == [job.result["point_id"]]
    assert [t.to_state.value for t in ops.service.jobs.transitions(job.id)] == [
        "CREATED",
        "PENDING",
        "RUNNING",
        "PENDING",
        "RUNNING",
        "COMPLETED",
    ]

"""The daemon: exclusive leadership (refuse or stand by), graceful shutdown with a timeout,
recovery of jobs left RUNNING by a crash, the lifecycle hook, and ``--once``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.catalog import Catalog
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import Handler, JobContext, JobResult
from strongroom.engine.daemon import Daemon, DaemonSettings
from strongroom.engine.jobs import JobService
from strongroom.engine.leader import Leadership
from strongroom.engine.states import JobStateMachine
from strongroom.errors import ConflictError
from tests.support.scheduling import (
    CONTINUOUS,
    run_jobs,
    runs,
    seed_plan,
    seed_resources,
)
from tests.support.waiting import PATIENCE


class Gate:
    """Holds every handler that enters it until released (or cancelled)."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.release = threading.Event()
        self._changed = threading.Condition()

    def hold(self, context: JobContext) -> None:
        with self._changed:
            self.entered.append(context.job.id)
            self._changed.notify_all()
        while not self.release.is_set():
            context.cancel.raise_if_cancelled()
            context.cancel.wait(0.01)
        context.cancel.raise_if_cancelled()

    def wait_entered(self, count: int = 2) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.entered) >= count, PATIENCE)


@contextmanager
def released_when_logged(gate: Gate, logger_name: str, message_start: str) -> Iterator[None]:
    """Release ``gate`` when logger ``logger_name`` logs a message starting so."""

    class Release(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith(message_start):
                gate.release.set()

    handler = Release()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


BACKUP = JobKind.BACKUP
FAST = DaemonSettings(
    tick_seconds=0.05,
    shutdown_timeout=5.0,
    abort_grace=2.0,
    poll_interval=0.05,
    job_lease_seconds=600.0,
)
EVENING = datetime(2030, 1, 1, 18, tzinfo=UTC)


@pytest.fixture
def planned(catalog: Catalog) -> Catalog:
    seed_resources(catalog)
    seed_plan(catalog, [CONTINUOUS])
    return catalog


@pytest.fixture
def daemons(machine: JobStateMachine) -> Iterator[list[Daemon]]:
    made: list[Daemon] = []
    yield made
    for daemon in made:
        daemon.stop()
        daemon.stop()
        daemon.shutdown()


def make(
    daemons: list[Daemon],
    machine: JobStateMachine,
    handler: Handler,
    settings: DaemonSettings = FAST,
    **options: object,
) -> Daemon:
    daemon = Daemon(machine, {BACKUP: handler}, settings, **options)  # type: ignore[arg-type]
    daemons.append(daemon)
    return daemon


def completes(context: JobContext) -> JobResult:
    return JobResult({"ok": True})


def test_a_second_daemon_refuses_to_schedule_and_a_standby_takes_over_when_the_leader_stops(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    clock.set(EVENING)
    leader = make(daemons, machine, completes)
    assert leader.start()

    refused = make(daemons, machine, completes)
    with pytest.raises(ConflictError, match="another daemon schedules this catalog") as caught:
        refused.start()
    assert "--standby" in caught.value.hint
    assert leader.leadership.holder in str(caught.value)

    standby = make(
        daemons, machine, completes, settings=DaemonSettings(**{**FAST.__dict__, "standby": True})
    )
    assert not standby.start()
    assert not standby.tick().leading  # only the leader fires
    assert leader.tick().report is not None
    leader.stop()
    leader.shutdown()  # releases the lease at once
    assert standby.tick().leading
    assert len(runs(planned)) == 1


def test_a_standby_takes_over_when_the_leader_stops_renewing(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    crashed = Leadership(machine.catalog, clock, holder="crashed", lease_seconds=60)
    assert crashed.acquire()
    standby = make(
        daemons, machine, completes, settings=DaemonSettings(**{**FAST.__dict__, "standby": True})
    )
    assert not standby.start()
    clock.advance(59)
    assert not standby.tick().leading
    clock.advance(2)
    assert standby.tick().leading


def test_stopping_lets_a_running_job_finish_within_the_timeout_then_releases_leadership(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    gate = Gate()

    def slow(context: JobContext) -> JobResult:
        gate.hold(context)
        return JobResult({"ok": True})

    daemon = make(
        daemons, machine, slow, DaemonSettings(**{**FAST.__dict__, "shutdown_timeout": PATIENCE})
    )
    daemon.start()
    clock.set(EVENING)
    daemon.tick()
    gate.wait_entered()

    daemon.stop()
    # The jobs end once the shutdown waits for them (it says so in its log), not after a
    # delay that a loaded machine might spend before the shutdown even began.
    with released_when_logged(gate, "strongroom.engine.daemon", "waiting up to"):
        report = daemon.shutdown()

    (run,) = runs(planned)
    states = {job.resource: job.state for job in run_jobs(planned, run.id)}
    assert states == {"cache": JobState.COMPLETED, "orders-db": JobState.COMPLETED}
    assert len(report.finished) == 2 and report.aborted == () == report.unresponsive
    assert not daemon.leadership.held
    other = Leadership(machine.catalog, clock, holder="next")
    assert other.acquire()  # free at once, not after the lease runs out


def test_jobs_still_running_at_the_shutdown_timeout_are_aborted_cleanly(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    gate = Gate()

    def endless(context: JobContext) -> JobResult:
        gate.hold(context)  # stops only when cancelled
        return JobResult()

    daemon = make(
        daemons, machine, endless, DaemonSettings(**{**FAST.__dict__, "shutdown_timeout": 0.2})
    )
    daemon.start()
    clock.set(EVENING)
    daemon.tick()
    gate.wait_entered()

    daemon.stop()
    report = daemon.shutdown()

    (run,) = runs(planned)
    jobs = run_jobs(planned, run.id)
    assert {job.state for job in jobs} == {JobState.ABORTED}
    assert {job.error.message for job in jobs if job.error} == {"the daemon is shutting down"}
    assert sorted(report.aborted) == sorted(job.id for job in jobs)
    assert report.unresponsive == ()


def test_a_handler_that_ignores_cancellation_is_aborted_in_the_catalog_anyway(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    entered = threading.Event()
    release = threading.Event()

    def stubborn(context: JobContext) -> JobResult:
        entered.set()
        release.wait(PATIENCE)  # a hung client library: never looks at the token
        return JobResult({"late": True})

    daemon = make(
        daemons,
        machine,
        stubborn,
        DaemonSettings(
            **{**FAST.__dict__, "shutdown_timeout": 0.1, "abort_grace": 0.2, "workers": 1}
        ),
    )
    daemon.start()
    clock.set(EVENING)
    daemon.tick()
    assert entered.wait(PATIENCE)

    daemon.stop()
    report = daemon.shutdown()
    release.set()

    assert len(report.unresponsive) == 1
    (job_id,) = report.unresponsive
    assert job_id in report.aborted
    job = machine.get(job_id)
    assert job.state is JobState.ABORTED
    assert job.error is not None and "did not stop in time" in job.error.message
    running = JobService(machine).list(states=[JobState.RUNNING])
    assert running == []


def test_a_second_stop_aborts_running_jobs_without_waiting_out_the_timeout(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    gate = Gate()

    def endless(context: JobContext) -> JobResult:
        gate.hold(context)
        return JobResult()

    daemon = make(
        daemons, machine, endless, DaemonSettings(**{**FAST.__dict__, "shutdown_timeout": 3600})
    )
    daemon.start()
    clock.set(EVENING)
    daemon.tick()
    gate.wait_entered()

    daemon.stop()
    daemon.stop()
    report = daemon.shutdown()

    assert len(report.aborted) == 2


def test_a_job_left_running_by_a_crashed_daemon_is_retried_never_left_running(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    service = JobService(machine)
    job_id = service.create_job(BACKUP, "orders-db", "production")
    with machine.work() as work:
        assert work.claim(owner="crashed-daemon", kinds=[BACKUP], lease_seconds=300)
    clock.advance(301)

    daemon = make(daemons, machine, completes)
    daemon.start(background=False)
    daemon.executor.run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert (job.state, job.attempt) == (JobState.COMPLETED, 2)
    assert "WorkerLost" in service.transitions(job_id)[3].reason


def test_the_lifecycle_hook_runs_once_per_interval_and_only_on_the_leader(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    calls: list[datetime] = []

    def lifecycle() -> object:
        calls.append(clock.now())
        return {"moved": 0}

    settings = DaemonSettings(
        **{**FAST.__dict__, "lifecycle_interval": timedelta(hours=1), "standby": True}
    )
    leader = make(daemons, machine, completes, settings, lifecycle=lifecycle)
    standby = make(daemons, machine, completes, settings, lifecycle=lifecycle)
    leader.start()
    standby.start()

    first = leader.tick()
    standby.tick()
    clock.advance(timedelta(minutes=59))
    leader.tick()
    clock.advance(timedelta(minutes=1))
    leader.tick()

    assert first.lifecycle == {"moved": 0}
    assert calls == [clock.now() - timedelta(hours=1), clock.now()]


def test_once_fires_what_is_due_runs_the_jobs_and_finishes_the_run(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    clock.set(EVENING)
    daemon = make(daemons, machine, completes)

    report = daemon.run(once=True)

    (run,) = runs(planned)
    assert run.state is JobState.COMPLETED
    assert report.aborted == ()
    assert not daemon.leadership.held


def test_the_run_loop_ticks_until_stopped(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, daemons: list[Daemon]
) -> None:
    clock.set(EVENING)
    daemon = make(daemons, machine, completes)
    loop = threading.Thread(target=daemon.run)
    loop.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=PATIENCE)
        while datetime.now(UTC) < deadline:
            finished = [run for run in runs(planned) if run.state is JobState.COMPLETED]
            if finished:
                break
            threading.Event().wait(0.05)
    finally:
        daemon.stop()
        loop.join(PATIENCE)
    assert not loop.is_alive()
    assert [run.state for run in runs(planned)] == [JobState.COMPLETED]

"""The thread-pool executor: results, partial results, cancellation, windows, progress,
leases taken from dead or stalled workers, and concurrency limits across processes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog import events as catalog_events
from strongroom.catalog.jobs import ConcurrencyLimits, JobGuard
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import JobContext, JobResult
from strongroom.engine.events import Event, EventBus
from strongroom.engine.jobs import JobService
from strongroom.engine.outcomes import complete
from strongroom.engine.retry import RetryPolicy
from strongroom.engine.states import JobStateMachine
from strongroom.errors import ConflictError, IllegalTransitionError, TimeoutError_
from tests.support.catalog import T0, most_running_at_once
from tests.support.waiting import PATIENCE
from tests.unit.engine.conftest import MakeExecutor
from tests.unit.engine.support import of_type

BACKUP = JobKind.BACKUP
QUIET = 3600.0  # a heartbeat interval long enough that tests drive heartbeats by hand


class Gate:
    """Lets a test hold a handler inside its work until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def hold(self, context: JobContext) -> None:
        self.entered.set()
        while not self.release.is_set():
            context.cancel.raise_if_cancelled()
            if context.cancel.wait(0.01):
                context.cancel.raise_if_cancelled()

    def wait_entered(self) -> None:
        assert self.entered.wait(PATIENCE), "the handler never started"


def test_a_job_runs_with_its_context_and_completes_with_the_handlers_result(
    service: JobService,
    clock: ManualClock,
    events: list[Event],
    make_executor: MakeExecutor,
) -> None:
    seen: list[tuple[str | None, str | None, int, object]] = []

    def handler(context: JobContext) -> JobResult:
        seen.append((context.job.resource, context.job.vault, context.job.attempt, context.clock))
        context.logger.info("dumping")
        return JobResult({"bytes": 42}, message="dumped 1 database")

    executor = make_executor({BACKUP: handler})
    job_id = service.create_job(BACKUP, "orders-db", "main", params={"databases": ["orders"]})
    executor.run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert seen == [("orders-db", "main", 1, clock)]
    assert (job.state, job.result, job.error, job.finished_at) == (
        JobState.COMPLETED,
        {"bytes": 42},
        None,
        T0,
    )
    assert (job.lease_owner, job.lease_expires_at) == (None, None)
    assert service.transitions(job_id)[-1].reason == "dumped 1 database"
    assert [e.type for e in events if not e.type.endswith("state_changed")] == [
        "backup.job.created",
        "backup.job.queued",
        "backup.job.started",
        "backup.job.completed",
    ]


def test_a_partial_result_is_partial_only_where_the_rule_allows_it(
    service: JobService, events: list[Event], make_executor: MakeExecutor
) -> None:
    def handler(context: JobContext) -> JobResult:
        return JobResult({"skipped": ["topic-b"]}, partial=True, message="1 topic unreadable")

    executor = make_executor({BACKUP: handler})
    allowed = service.create_job(BACKUP, "orders-db", rule="daily/partial")
    refused = service.create_job(BACKUP, "billing-db", rule="daily/nightly")
    executor.run_until_idle(timeout=PATIENCE)

    assert service.get(allowed).state is JobState.PARTIAL
    assert service.get(allowed).result == {"skipped": ["topic-b"]}
    failed = service.get(refused)
    assert (failed.state, failed.attempt) == (JobState.FAILED, 1)
    assert failed.error is not None and failed.error.code == "PartialResultNotAllowed"
    assert [e.subject for e in of_type(events, "backup.escalation")] == [refused]


def test_cancelling_a_running_job_aborts_it(
    machine: JobStateMachine, make_executor: MakeExecutor
) -> None:
    gate = Gate()

    def handler(context: JobContext) -> JobResult:
        gate.hold(context)
        return JobResult()

    executor = make_executor({BACKUP: handler})
    service = JobService(machine, executor=executor)
    executor.start()
    job_id = service.create_job(BACKUP, "orders-db", "main")
    gate.wait_entered()

    asked = service.cancel(job_id)
    ended = service.wait(job_id, timeout=PATIENCE)

    assert (asked.state, asked.cancel_requested) == (JobState.RUNNING, True)
    assert ended.state is JobState.ABORTED
    assert ended.error is not None
    assert (ended.error.code, ended.error.message) == ("Aborted", "cancelled by the user")
    assert [t.to_state for t in service.transitions(job_id)][-2:] == [
        JobState.RUNNING,
        JobState.ABORTED,
    ]


def test_a_cancel_made_by_another_process_reaches_the_worker_at_its_heartbeat(
    machine: JobStateMachine, make_executor: MakeExecutor, tmp_path: Path, clock: ManualClock
) -> None:
    gate = Gate()

    def handler(context: JobContext) -> JobResult:
        gate.hold(context)
        return JobResult()

    executor = make_executor({BACKUP: handler}, heartbeat_interval=QUIET)
    job_id = JobService(machine).create_job(BACKUP, "orders-db", "main")
    executor.run_once()
    gate.wait_entered()

    with open_catalog(None, tmp_path / "home") as other_process:
        other = JobService(JobStateMachine(other_process, EventBus(other_process, clock), clock))
        other.cancel(job_id, reason="stop from the API")
        assert other.get(job_id).state is JobState.RUNNING  # nobody there to stop it yet

    executor.heartbeat_once()
    ended = executor.wait(job_id, timeout=PATIENCE)
    assert ended.state is JobState.ABORTED
    assert ended.error is not None and ended.error.message == "stop from the API"


def test_a_waiting_job_is_aborted_at_once_and_an_ended_job_cannot_be_cancelled(
    service: JobService, events: list[Event]
) -> None:
    job_id = service.create_job(BACKUP, "orders-db", "main")

    aborted = service.cancel(job_id, reason="not tonight")

    assert (aborted.state, aborted.cancel_reason) == (JobState.ABORTED, "not tonight")
    assert of_type(events, "backup.job.aborted")[0].payload["reason"] == "not tonight"
    with pytest.raises(IllegalTransitionError, match="already ended"):
        service.cancel(job_id)


def test_a_running_job_whose_completion_window_closes_is_aborted(
    service: JobService, clock: ManualClock, make_executor: MakeExecutor
) -> None:
    gate = Gate()

    def handler(context: JobContext) -> JobResult:
        gate.hold(context)
        return JobResult()

    executor = make_executor({BACKUP: handler}, heartbeat_interval=QUIET, lease_seconds=86400)
    job_id = service.create_job(BACKUP, "orders-db", rule="daily/windowed")
    assert service.get(job_id).complete_by == T0 + timedelta(minutes=120)
    executor.run_once()
    gate.wait_entered()

    clock.advance(timedelta(minutes=119))
    executor.heartbeat_once()
    assert service.get(job_id).state is JobState.RUNNING
    clock.advance(timedelta(minutes=1))
    executor.heartbeat_once()

    ended = executor.wait(job_id, timeout=PATIENCE)
    assert ended.state is JobState.ABORTED
    assert ended.error is not None and "completion window closed" in ended.error.message


def test_a_job_that_misses_its_start_window_expires_without_running(
    service: JobService, clock: ManualClock, events: list[Event], make_executor: MakeExecutor
) -> None:
    calls: list[str] = []

    def handler(context: JobContext) -> JobResult:
        calls.append(context.job.id)
        return JobResult()

    executor = make_executor({BACKUP: handler})
    job_id = service.create_job(BACKUP, "orders-db", rule="daily/windowed")

    clock.advance(timedelta(minutes=60))
    executor.run_until_idle(timeout=PATIENCE)

    assert calls == []
    assert service.get(job_id).state is JobState.EXPIRED
    assert "start window closed" in of_type(events, "backup.job.expired")[0].payload["reason"]


def test_progress_is_stored_with_the_lease_renewal_and_published_in_process(
    service: JobService,
    catalog: Catalog,
    clock: ManualClock,
    events: list[Event],
    make_executor: MakeExecutor,
) -> None:
    gate = Gate()

    def handler(context: JobContext) -> JobResult:
        context.progress(5, 10, "tables")
        gate.hold(context)
        return JobResult()

    executor = make_executor({BACKUP: handler}, heartbeat_interval=QUIET)
    job_id = service.create_job(BACKUP, "orders-db", "main")
    executor.run_once()
    gate.wait_entered()
    clock.advance(30)
    executor.heartbeat_once()
    executor.heartbeat_once()  # unchanged progress is not published twice

    job = service.get(job_id)
    assert job.progress == {"done": 5, "total": 10, "message": "tables"}
    assert job.lease_expires_at == T0 + timedelta(seconds=90)
    progress = of_type(events, "backup.job.progress")
    assert [e.payload["job"]["progress"]["done"] for e in progress] == [5]
    with catalog.session(readonly=True) as session:
        assert catalog_events.list_events(session, types=["*.progress"]) == []
    gate.release.set()
    assert executor.wait(job_id, timeout=PATIENCE).state is JobState.COMPLETED


def test_a_crashed_workers_job_is_claimed_again_once_its_lease_expires(
    machine: JobStateMachine,
    service: JobService,
    clock: ManualClock,
    make_executor: MakeExecutor,
) -> None:
    job_id = service.create_job(BACKUP, "orders-db", "main")
    with machine.work() as work:
        row = work.claim(owner="crashed-worker", kinds=[BACKUP], lease_seconds=60)
        assert row is not None
        crashed_view = work.view(row)
    calls: list[int] = []

    def handler(context: JobContext) -> JobResult:
        calls.append(context.job.attempt)
        return JobResult({"by": "rescuer"})

    executor = make_executor({BACKUP: handler})
    executor.run_until_idle(timeout=PATIENCE)
    assert calls == []  # the lease still holds
    clock.advance(61)
    executor.run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert calls == [2]
    assert (job.state, job.attempt, job.result) == (JobState.COMPLETED, 2, {"by": "rescuer"})
    lost = service.transitions(job_id)[3]
    assert (lost.from_state, lost.to_state) == (JobState.RUNNING, JobState.PENDING)
    assert "WorkerLost" in lost.reason
    with pytest.raises(ConflictError), machine.work() as work:
        complete(
            work,
            crashed_view,
            result={"by": "the dead"},
            guard=JobGuard(attempt=1, lease_owner="crashed-worker"),
        )
    assert service.get(job_id).result == {"by": "rescuer"}


def test_a_lost_worker_on_the_last_attempt_fails_the_job_and_escalates(
    machine: JobStateMachine,
    service: JobService,
    clock: ManualClock,
    events: list[Event],
    make_executor: MakeExecutor,
) -> None:
    job_id = service.create_job(
        BACKUP, "orders-db", "main", retry_policy=RetryPolicy(max_attempts=1)
    )
    with machine.work() as work:
        work.claim(owner="crashed-worker", kinds=[BACKUP], lease_seconds=60)
    clock.advance(61)
    make_executor({BACKUP: lambda context: JobResult()}).run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "WorkerLost"
    assert len(of_type(events, "backup.escalation")) == 1


def test_a_stalled_worker_whose_job_was_taken_over_cannot_finish_it(
    machine: JobStateMachine,
    service: JobService,
    clock: ManualClock,
    make_executor: MakeExecutor,
) -> None:
    gate = Gate()

    def stalled(context: JobContext) -> JobResult:
        gate.entered.set()
        gate.release.wait(PATIENCE)  # ignores cancellation, like a hung client library
        return JobResult({"by": "stalled"})

    first = make_executor({BACKUP: stalled}, heartbeat_interval=QUIET, worker_id="first")
    second = make_executor(
        {BACKUP: lambda context: JobResult({"by": "second"})}, worker_id="second"
    )
    job_id = service.create_job(BACKUP, "orders-db", "main")
    first.run_once()
    gate.wait_entered()

    clock.advance(61)
    second.run_until_idle(timeout=PATIENCE)
    first.heartbeat_once()  # finds its lease gone
    gate.release.set()
    first.run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert (job.state, job.attempt, job.result) == (JobState.COMPLETED, 2, {"by": "second"})


def test_two_processes_never_run_one_resources_backups_at_once_and_keep_the_limits(
    catalog: Catalog,
    machine: JobStateMachine,
    service: JobService,
    clock: ManualClock,
    make_executor: MakeExecutor,
    tmp_path: Path,
) -> None:
    lock = threading.Lock()
    running: Counter[str] = Counter()
    peaks: Counter[str] = Counter()
    calls: list[str] = []
    two_at_once = threading.Event()

    def handler(context: JobContext) -> JobResult:
        resource = context.job.resource or "?"
        keys = [resource, f"type:{context.job.resource_type}", "all"]
        with lock:
            calls.append(context.job.id)
            for key in keys:
                running[key] += 1
                peaks[key] = max(peaks[key], running[key])
            if running["all"] == 2:
                two_at_once.set()
        # Until two jobs have run at the same time, each job waits for a second one to
        # start beside it: executors that ran one job at a time would never get there, and
        # the job fails. Once it happened, no job waits. (The bound only stops a hang.)
        assert two_at_once.wait(timeout=120), "no second job started beside this one"
        time.sleep(0.02)  # gives a limit violation the time to show; the test never needs it
        with lock:  # before the commit that lets another worker in
            for key in keys:
                running[key] -= 1
        return JobResult()

    limits = ConcurrencyLimits(max_running=2, per_resource_type={"postgres": 1})
    with open_catalog(None, tmp_path / "home") as second_catalog:
        second_machine = JobStateMachine(second_catalog, EventBus(second_catalog, clock), clock)
        executors = [
            make_executor({BACKUP: handler}, limits=limits, max_workers=3, worker_id="a"),
            make_executor(
                {BACKUP: handler}, on=second_machine, limits=limits, max_workers=3, worker_id="b"
            ),
        ]
        job_ids = [
            service.create_job(BACKUP, resource, "main")
            for resource in ["orders-db", "billing-db", "cache"] * 4
        ]
        threads = [
            threading.Thread(target=executor.run_until_idle, kwargs={"timeout": PATIENCE})
            for executor in executors
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(calls) == sorted(job_ids)
    assert {service.get(job_id).state for job_id in job_ids} == {JobState.COMPLETED}
    assert max(peaks["orders-db"], peaks["billing-db"], peaks["cache"]) == 1
    assert peaks["type:postgres"] == 1
    assert peaks["all"] == 2  # the global limit was reached, never passed
    assert most_running_at_once(catalog, job_ids) == 2  # and so the catalog recorded it


def test_wait_returns_the_ended_job_and_times_out_while_it_runs(
    machine: JobStateMachine, make_executor: MakeExecutor
) -> None:
    gate = Gate()

    def handler(context: JobContext) -> JobResult:
        gate.hold(context)
        return JobResult({"ok": True})

    executor = make_executor({BACKUP: handler})
    service = JobService(machine, executor=executor)
    executor.start()
    job_id = service.create_job(BACKUP, "orders-db", "main")
    gate.wait_entered()

    with pytest.raises(TimeoutError_, match="still RUNNING"):
        service.wait(job_id, timeout=0.1)
    gate.release.set()
    assert service.wait(job_id, timeout=PATIENCE).result == {"ok": True}


def test_jobs_of_kinds_without_a_handler_are_left_for_other_executors(
    service: JobService, make_executor: MakeExecutor
) -> None:
    restore = service.create_job(JobKind.RESTORE, "orders-db", "main")
    make_executor({BACKUP: lambda context: JobResult()}).run_until_idle(timeout=PATIENCE)
    assert service.get(restore).state is JobState.PENDING


def test_a_handler_that_returns_no_result_fails_the_job(
    service: JobService, make_executor: MakeExecutor
) -> None:
    def handler(context: JobContext) -> JobResult:
        return None  # type: ignore[return-value]  # the mistake under test

    executor = make_executor({BACKUP: handler})
    job_id = service.create_job(BACKUP, "orders-db", "main")
    executor.run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert job.state is JobState.FAILED
    assert job.error is not None and "TypeError" in job.error.message


def test_shutting_down_with_cancel_aborts_the_running_jobs(
    service: JobService, make_executor: MakeExecutor
) -> None:
    gate = Gate()

    def handler(context: JobContext) -> JobResult:
        gate.hold(context)
        return JobResult()

    executor = make_executor({BACKUP: handler})
    job_id = service.create_job(BACKUP, "orders-db", "main")
    executor.run_once()
    gate.wait_entered()
    executor.shutdown(wait=True, cancel=True)

    job = service.get(job_id)
    assert job.state is JobState.ABORTED
    assert job.error is not None and "shutting down" in job.error.message

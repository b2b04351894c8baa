"""What an executor claims (the catalog's stored limits, ``only``) and how a finished job's
record commits with its end: never for a worker that lost its lease, never twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog.models import RecoveryPoint
from strongroom.catalog.points import record_recovery_point
from strongroom.catalog.resources import get_resource, get_vault
from strongroom.catalog.settings import ConcurrencyLimits, write_concurrency_limits
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import JobContext, JobResult
from strongroom.engine.events import Event, EventBus
from strongroom.engine.jobs import JobService
from strongroom.engine.recovery import recover_expired_leases
from strongroom.engine.retry import RetryPolicy
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import JobView
from strongroom.errors import ConflictError
from tests.support.catalog import T0, most_running_at_once
from tests.support.waiting import PATIENCE
from tests.unit.engine.conftest import MakeExecutor

BACKUP = JobKind.BACKUP


def store_limits(catalog: Catalog, limits: ConcurrencyLimits) -> None:
    with catalog.session() as session:
        write_concurrency_limits(session, limits, at=T0)


def points_of(catalog: Catalog, job_id: str) -> list[str]:
    with catalog.session(readonly=True) as session:
        statement = select(RecoveryPoint.id).where(RecoveryPoint.job_id == job_id)
        return sorted(session.scalars(statement))


def recorder(
    catalog: Catalog, job_id: str, point_id: str, discarded: list[str] | None = None
) -> JobResult:
    """A result whose record writes recovery point ``point_id`` for the job, and whose
    discard notes the id in ``discarded``."""
    with catalog.session(readonly=True) as session:
        vault_id = get_vault(session, "main").id
        resource_id = get_resource(session, "orders-db").id

    def record(session: Session) -> None:
        record_recovery_point(
            session,
            point_id=point_id,
            vault_id=vault_id,
            resource_id=resource_id,
            job_id=job_id,
            created_at=T0,
        )

    def discard() -> None:
        if discarded is not None:
            discarded.append(point_id)

    return JobResult({"point_id": point_id}, record=record, discard=discard)


def test_executors_without_limits_keep_the_limits_stored_in_the_catalog(
    catalog: Catalog,
    service: JobService,
    clock: ManualClock,
    make_executor: MakeExecutor,
    tmp_path: Path,
) -> None:
    store_limits(catalog, ConcurrencyLimits(max_running=1))
    lock = threading.Lock()
    running: Counter[str] = Counter()
    peak = 0

    def handler(context: JobContext) -> JobResult:
        nonlocal peak
        with lock:
            running["all"] += 1
            peak = max(peak, running["all"])
        time.sleep(0.02)
        with lock:  # before the commit that lets another worker in
            running["all"] -= 1
        return JobResult()

    with open_catalog(None, tmp_path / "home") as second_catalog:
        second = JobStateMachine(second_catalog, EventBus(second_catalog, clock), clock)
        executors = [
            make_executor({BACKUP: handler}, max_workers=4, worker_id="a"),
            make_executor({BACKUP: handler}, on=second, max_workers=4, worker_id="b"),
        ]
        job_ids = [
            service.create_job(BACKUP, resource, "main")
            for resource in ["orders-db", "billing-db", "cache"]
        ]
        threads = [
            threading.Thread(target=executor.run_until_idle, kwargs={"timeout": PATIENCE})
            for executor in executors
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert {service.get(job_id).state for job_id in job_ids} == {JobState.COMPLETED}
    assert peak == 1
    assert most_running_at_once(catalog) == 1


def test_an_executor_given_only_some_jobs_leaves_older_ones_queued(
    service: JobService, make_executor: MakeExecutor
) -> None:
    older = service.create_job(BACKUP, "orders-db", "main")
    mine = service.create_job(BACKUP, "cache", "main")
    ran: list[str] = []

    def handler(context: JobContext) -> JobResult:
        ran.append(context.job.id)
        return JobResult()

    make_executor({BACKUP: handler}, only=[mine]).run_until_idle(timeout=PATIENCE)

    assert ran == [mine]
    assert service.get(mine).state is JobState.COMPLETED
    assert service.get(older).state is JobState.PENDING


def test_an_executor_given_only_some_jobs_still_keeps_the_stored_limits(
    catalog: Catalog, machine: JobStateMachine, service: JobService, make_executor: MakeExecutor
) -> None:
    store_limits(catalog, ConcurrencyLimits(per_resource_type={"postgres": 1}))
    elsewhere = service.create_job(BACKUP, "orders-db", "main")
    with machine.work() as work:
        assert work.claim(owner="the-daemon", kinds=[BACKUP], lease_seconds=60) is not None
    mine = service.create_job(BACKUP, "billing-db", "main")

    make_executor({BACKUP: lambda context: JobResult()}, only=[mine]).run_until_idle(
        timeout=PATIENCE
    )

    assert service.get(elsewhere).state is JobState.RUNNING
    assert service.get(mine).state is JobState.PENDING  # postgres is full


def test_a_worker_that_lost_its_lease_records_nothing_and_the_retry_records_once(
    catalog: Catalog,
    machine: JobStateMachine,
    service: JobService,
    clock: ManualClock,
    make_executor: MakeExecutor,
) -> None:
    job_id = service.create_job(BACKUP, "orders-db", "main")
    discarded: list[str] = []

    def handler(context: JobContext) -> JobResult:
        attempt = context.job.attempt
        if attempt == 1:
            # The worker stalls after its work: the lease runs out and the job is
            # recovered (by any worker) before this one gets to end it.
            clock.advance(61)
            assert [job.id for job in recover_expired_leases(machine)] == [job_id]
        return recorder(catalog, job_id, f"point-of-attempt-{attempt}", discarded)

    make_executor({BACKUP: handler}).run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert (job.state, job.attempt) == (JobState.COMPLETED, 2)
    assert points_of(catalog, job_id) == ["point-of-attempt-2"]
    assert discarded == ["point-of-attempt-1"]  # what the losing attempt left is removed
    assert job.result == {"point_id": "point-of-attempt-2"}
    assert [(t.from_state, t.to_state) for t in service.transitions(job_id)][2:] == [
        (JobState.PENDING, JobState.RUNNING),
        (JobState.RUNNING, JobState.PENDING),
        (JobState.PENDING, JobState.RUNNING),
        (JobState.RUNNING, JobState.COMPLETED),
    ]


def test_a_record_that_fails_undoes_the_end_and_fails_the_attempt(
    catalog: Catalog, service: JobService, make_executor: MakeExecutor
) -> None:
    job_id = service.create_job(BACKUP, "orders-db", "main", retry_policy=RetryPolicy(2, 0, 1.0))
    with catalog.session() as session:  # the point id the job will try to record is taken
        record_recovery_point(
            session,
            point_id="taken",
            vault_id=get_vault(session, "main").id,
            resource_id=get_resource(session, "cache").id,
            created_at=T0,
        )

    discarded: list[str] = []
    make_executor(
        {BACKUP: lambda context: recorder(catalog, job_id, "taken", discarded)}
    ).run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert (job.state, job.attempt) == (JobState.FAILED, 1)  # ConflictError: not retryable
    assert job.error is not None and job.error.code == ConflictError.code
    assert "already recorded" in job.error.message
    assert points_of(catalog, job_id) == []
    assert discarded == ["taken"]
    assert [t.to_state for t in service.transitions(job_id)] == [
        JobState.CREATED,
        JobState.PENDING,
        JobState.RUNNING,
        JobState.FAILED,
    ]


def test_a_partial_result_the_job_may_not_keep_records_nothing(
    catalog: Catalog, service: JobService, make_executor: MakeExecutor
) -> None:
    job_id = service.create_job(BACKUP, "orders-db", "main")

    def handler(context: JobContext) -> JobResult:
        result = recorder(catalog, job_id, "partial-point")
        return JobResult(result.data, partial=True, record=result.record)

    make_executor({BACKUP: handler}).run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "PartialResultNotAllowed"
    assert points_of(catalog, job_id) == []


def _follow_up(session: Session, now: datetime, *, of: str) -> JobView:
    vault = get_vault(session, "dr")
    resource = get_resource(session, "orders-db")
    return JobView(
        id=f"copy-of-{of}"[:36],
        kind=JobKind.COPY,
        state=JobState.PENDING,
        resource=resource.name,
        resource_type=resource.type,
        vault=vault.name,
        rule=None,
        run_id=None,
        attempt=1,
        max_attempts=1,
        retry_interval_seconds=0,
        retry_backoff_rate=1.0,
        allow_partial=False,
        created_at=now,
        updated_at=now,
        resource_id=resource.id,
        vault_id=vault.id,
    )


def test_follow_ups_are_queued_with_the_end_and_announced(
    catalog: Catalog, service: JobService, make_executor: MakeExecutor, events: list[Event]
) -> None:
    job_id = service.create_job(BACKUP, "orders-db", "main")

    def handler(context: JobContext) -> JobResult:
        result = recorder(catalog, job_id, "with-a-copy")
        return JobResult(
            result.data,
            record=result.record,
            follow_ups=lambda session, now: [_follow_up(session, now, of=job_id)],
        )

    make_executor({BACKUP: handler}).run_until_idle(timeout=PATIENCE)

    assert service.get(job_id).state is JobState.COMPLETED
    [copy] = service.list(kinds=[JobKind.COPY])
    assert (copy.state, copy.vault) == (JobState.PENDING, "dr")
    assert [t.reason for t in service.transitions(copy.id)][-1] == f"queued by backup job {job_id}"
    announced = {event.type for event in events if event.subject == copy.id}
    assert {"copy.job.created", "copy.job.queued"} <= announced


def test_follow_ups_that_fail_undo_the_end_and_fail_the_attempt(
    catalog: Catalog, service: JobService, make_executor: MakeExecutor
) -> None:
    job_id = service.create_job(BACKUP, "orders-db", "main")
    discarded: list[str] = []

    def broken(session: Session, now: datetime) -> list[JobView]:
        raise ConflictError("the follow-up cannot be queued")

    def handler(context: JobContext) -> JobResult:
        result = recorder(catalog, job_id, "no-copy", discarded)
        return JobResult(
            result.data, record=result.record, discard=result.discard, follow_ups=broken
        )

    make_executor({BACKUP: handler}).run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert job.state is JobState.FAILED
    assert job.error is not None and "follow-up" in job.error.message
    assert points_of(catalog, job_id) == []
    assert discarded == ["no-copy"]
    assert service.list(kinds=[JobKind.COPY]) == []

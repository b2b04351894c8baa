"""Retries: the seed's policy, the decision, and whole retry sequences on a manual clock."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.catalog import Catalog, failures, open_catalog
from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.types import JobKind, JobState
from strongroom.config import plans as config_plans
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import JobContext, JobResult
from strongroom.engine.events import Event
from strongroom.engine.jobs import JobService
from strongroom.engine.retry import (
    SEED_MAX_ATTEMPTS,
    RetryPolicy,
    attempts_in_all,
    decide,
    failure_component,
)
from strongroom.engine.states import JobStateMachine
from strongroom.errors import (
    AccessDeniedError,
    ConfigError,
    InsufficientStorageError,
    NetworkError,
    ThrottlingError,
)
from tests.support.catalog import T0
from tests.support.waiting import PATIENCE
from tests.unit.engine.conftest import MakeExecutor
from tests.unit.engine.support import of_type

BACKUP = JobKind.BACKUP


def test_the_default_policy_is_the_seeds() -> None:
    policy = RetryPolicy()
    # The seed's MaxAttempts 3 counts retries: 4 attempts in all, the first included.
    assert (policy.max_attempts, policy.interval_seconds, policy.backoff_rate) == (4, 300, 2.0)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3)] == [300, 600, 1200]


def test_a_rule_with_the_default_config_and_an_ad_hoc_job_allow_the_same_attempts() -> None:
    configured = config_plans.RetryPolicy()
    assert configured.max_attempts == SEED_MAX_ATTEMPTS == 3
    assert attempts_in_all(configured.max_attempts) == RetryPolicy().max_attempts
    assert attempts_in_all(0) == 1  # MaxAttempts 0: never retried


def test_a_policy_is_read_from_stored_json_with_defaults_and_checked() -> None:
    assert RetryPolicy.from_mapping({"max_attempts": 5}) == RetryPolicy(5, 300, 2.0)
    assert RetryPolicy.from_mapping({}, RetryPolicy(2, 10, 1.0)) == RetryPolicy(2, 10, 1.0)
    for bad in (
        {"tries": 3},
        {"max_attempts": 0},
        {"backoff_rate": 0.5},
        {"interval_seconds": "x"},
    ):
        with pytest.raises(ConfigError):
            RetryPolicy.from_mapping(bad)


@pytest.mark.parametrize(
    ("error", "attempt", "retry", "delay"),
    [
        (NetworkError("reset"), 1, True, 300),
        (ThrottlingError("slow down"), 2, True, 600),
        (NetworkError("reset"), 3, True, 1200),
        (NetworkError("reset"), 4, False, None),
        (AccessDeniedError("no"), 1, False, None),
        (InsufficientStorageError("full"), 1, False, None),
        (ValueError("a bug"), 1, False, None),
    ],
)
def test_only_retryable_errors_with_attempts_left_are_retried(
    error: BaseException, attempt: int, retry: bool, delay: float | None
) -> None:
    decision = decide(RetryPolicy(), error, attempt)
    assert decision.retry is retry
    assert (decision.delay.total_seconds() if decision.delay else None) == delay


def test_a_retryable_failure_is_retried_after_300_600_1200_seconds_then_escalated(
    machine: JobStateMachine,
    service: JobService,
    clock: ManualClock,
    events: list[Event],
    make_executor: MakeExecutor,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    started: list[int] = []

    def handler(context: JobContext) -> JobResult:
        started.append(context.job.attempt)
        raise NetworkError("connection reset by peer")

    executor = make_executor({BACKUP: handler})
    job_id = service.create_job(BACKUP, "orders-db", "main", rule="daily/nightly")

    executor.run_until_idle(timeout=PATIENCE)
    first = service.get(job_id)
    assert (first.state, first.attempt, first.next_attempt_at) == (
        JobState.PENDING,
        2,
        T0 + timedelta(seconds=300),
    )
    assert first.error is not None and first.error.code == "NetworkError"

    # The counts are in the catalog, not in memory: another process sees them.
    with open_catalog(None, tmp_path / "home") as reopened, reopened.session() as session:
        assert catalog_jobs.get_job(session, job_id).attempt == 2
        record = failures.get_failure_record(session, "backup/orders-db/daily/nightly")
        assert record is not None and record.attempts == 1

    clock.advance(299)
    executor.run_until_idle(timeout=PATIENCE)
    assert started == [1]
    clock.advance(1)
    executor.run_until_idle(timeout=PATIENCE)
    assert started == [1, 2]
    assert service.get(job_id).next_attempt_at == T0 + timedelta(seconds=900)
    clock.advance(599)
    executor.run_until_idle(timeout=PATIENCE)
    assert started == [1, 2]
    clock.advance(1)
    executor.run_until_idle(timeout=PATIENCE)
    assert started == [1, 2, 3]
    clock.advance(1200)
    executor.run_until_idle(timeout=PATIENCE)

    final = service.get(job_id)
    assert started == [1, 2, 3, 4]
    assert (final.state, final.attempt, final.max_attempts) == (JobState.FAILED, 4, 4)
    assert final.finished_at == T0 + timedelta(seconds=2100)
    retries = of_type(events, "backup.job.retry_scheduled")
    assert [e.payload["job"]["next_attempt_at"] for e in retries] == [
        (T0 + timedelta(seconds=300)).isoformat(),
        (T0 + timedelta(seconds=900)).isoformat(),
        (T0 + timedelta(seconds=2100)).isoformat(),
    ]
    escalations = of_type(events, "backup.escalation")
    assert len(escalations) == 1
    assert escalations[0].payload["consecutive_failures"] == 4
    assert escalations[0].payload["component"] == "backup/orders-db/daily/nightly"
    assert escalations[0].payload["job"]["error"]["code"] == "NetworkError"
    with catalog.session(readonly=True) as session:
        record = failures.get_failure_record(session, "backup/orders-db/daily/nightly")
        assert record is not None
        assert (record.attempts, record.escalated) == (4, True)
    assert [(t.from_state, t.to_state) for t in service.transitions(job_id)][2:] == [
        (JobState.PENDING, JobState.RUNNING),
        (JobState.RUNNING, JobState.PENDING),
        (JobState.PENDING, JobState.RUNNING),
        (JobState.RUNNING, JobState.PENDING),
        (JobState.PENDING, JobState.RUNNING),
        (JobState.RUNNING, JobState.PENDING),
        (JobState.PENDING, JobState.RUNNING),
        (JobState.RUNNING, JobState.FAILED),
    ]


def test_a_non_retryable_failure_fails_at_once_and_escalates(
    service: JobService, events: list[Event], make_executor: MakeExecutor
) -> None:
    calls: list[int] = []

    def handler(context: JobContext) -> JobResult:
        calls.append(context.job.attempt)
        raise AccessDeniedError("password authentication failed for user backup")

    executor = make_executor({BACKUP: handler})
    job_id = service.create_job(BACKUP, "orders-db", "main")
    executor.run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert calls == [1]
    assert job.state is JobState.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.retryable) == ("AccessDeniedException", False)
    assert of_type(events, "*.retry_scheduled") == []
    assert len(of_type(events, "backup.escalation")) == 1


def test_an_unexpected_exception_fails_the_job_and_is_logged_with_its_traceback(
    service: JobService,
    events: list[Event],
    make_executor: MakeExecutor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(context: JobContext) -> JobResult:
        raise KeyError("missing-part")

    executor = make_executor({BACKUP: handler})
    job_id = service.create_job(BACKUP, "orders-db", "main")
    with caplog.at_level(logging.ERROR, logger="strongroom"):
        executor.run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert job.state is JobState.FAILED
    assert job.error is not None
    assert job.error.code == "UnexpectedError"
    assert "KeyError" in job.error.message and "missing-part" in job.error.message
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)
    assert len(of_type(events, "backup.escalation")) == 1


def test_a_success_after_a_failure_resolves_the_failure_record(
    service: JobService, clock: ManualClock, make_executor: MakeExecutor, catalog: Catalog
) -> None:
    outcomes: list[Exception | None] = [NetworkError("blip"), None]

    def handler(context: JobContext) -> JobResult:
        error = outcomes.pop(0)
        if error is not None:
            raise error
        return JobResult({"ok": True})

    executor = make_executor({BACKUP: handler})
    job_id = service.create_job(BACKUP, "orders-db", "main", rule="daily/fast")
    executor.run_until_idle(timeout=PATIENCE)
    assert service.get(job_id).next_attempt_at == T0 + timedelta(seconds=10)
    clock.advance(10)
    executor.run_until_idle(timeout=PATIENCE)

    job = service.get(job_id)
    assert (job.state, job.attempt, job.result, job.error) == (
        JobState.COMPLETED,
        2,
        {"ok": True},
        None,
    )
    with catalog.session(readonly=True) as session:
        assert failures.list_failure_records(session) == []
    assert failure_component(job) == "backup/orders-db/daily/fast"

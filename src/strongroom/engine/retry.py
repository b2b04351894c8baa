"""Retries with exponential backoff, failure records, and escalation.

The policy is the seed's (``MaxAttempts: 3``, ``IntervalSeconds: 300``,
``BackoffRate: 2.0``). The seed's ``MaxAttempts`` counts *retries* after the first
attempt, and so does every number a user gives (``retry.max_attempts`` in a config,
``--max-attempts``); a job records the attempts it may make *in all*,
``max_attempts = MaxAttempts + 1`` (:func:`attempts_in_all`, the one place that adds the
first attempt), so the seed's defaults allow 4 attempts whether a rule or an operator
started the job. After attempt ``n`` fails with a retryable error and
``n < max_attempts``, attempt ``n + 1`` may start ``interval * backoff ** (n - 1)``
seconds later (300 s, then 600 s, then 1200 s). A non-retryable error (per
:func:`strongroom.errors.is_retryable`; anything that is not a StrongroomError counts as
not retryable), or a failure of the last attempt, fails the job and publishes
``backup.escalation``.

Every failed attempt is also counted in the catalog's failure records under the job's
component (``kind/resource/plan/rule``), so counts survive restarts and a report can say
"failing since Tuesday, 7 attempts".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Final

from strongroom.catalog import failures
from strongroom.catalog.jobs import JobGuard
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.events import ESCALATION, RESTORE_TEST_FAILED
from strongroom.engine.states import Work
from strongroom.engine.views import JobError, JobView, job_event_payload
from strongroom.errors import ConfigError, StrongroomError, is_retryable
from strongroom.logs import mask

UNEXPECTED_ERROR_CODE: Final = "UnexpectedError"
"""Error code recorded for an exception that is not a StrongroomError (a bug)."""

SEED_MAX_ATTEMPTS: Final = 3
"""The seed's ``RetryPolicy.MaxAttempts``: retries after the first attempt."""


def attempts_in_all(max_retries: int) -> int:
    """Return the attempts a job may make when ``max_retries`` (the seed's MaxAttempts)
    retries may follow its first attempt."""
    return max_retries + 1


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon to retry a failed job.

    ``max_attempts`` counts all attempts, the first included (the seed's MaxAttempts plus
    one: :func:`attempts_in_all`); the delay before attempt ``n + 1`` is
    ``interval_seconds * backoff_rate ** (n - 1)``.
    """

    max_attempts: int = attempts_in_all(SEED_MAX_ATTEMPTS)
    interval_seconds: float = 300.0
    backoff_rate: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"retry max_attempts must be at least 1, not {self.max_attempts}")
        if not math.isfinite(self.interval_seconds) or self.interval_seconds < 0:
            raise ConfigError(
                f"retry interval_seconds must be 0 or more, not {self.interval_seconds}"
            )
        if not math.isfinite(self.backoff_rate) or self.backoff_rate < 1:
            raise ConfigError(f"retry backoff_rate must be 1.0 or more, not {self.backoff_rate}")

    def delay(self, attempt: int) -> timedelta:
        """Return how long to wait after attempt ``attempt`` (1-based) failed."""
        if attempt < 1:
            raise ValueError(f"attempts count from 1, not {attempt}")
        return timedelta(seconds=self.interval_seconds * self.backoff_rate ** (attempt - 1))

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], defaults: RetryPolicy | None = None
    ) -> RetryPolicy:
        """Build a policy from stored JSON (``max_attempts``, ``interval_seconds``,
        ``backoff_rate``); missing keys come from ``defaults``. Raises ConfigError."""
        base = asdict(defaults or cls())
        unknown = set(values) - set(base)
        if unknown:
            raise ConfigError(f"unknown retry policy settings: {sorted(unknown)}")
        merged = {**base, **values}
        try:
            return cls(
                max_attempts=int(merged["max_attempts"]),
                interval_seconds=float(merged["interval_seconds"]),
                backoff_rate=float(merged["backoff_rate"]),
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(f"invalid retry policy {dict(values)}: {error}") from error

    @classmethod
    def of_job(cls, job: JobView) -> RetryPolicy:
        """Return the policy stored on a job when it was created."""
        return cls(job.max_attempts, job.retry_interval_seconds, job.retry_backoff_rate)


@dataclass(frozen=True)
class RetryDecision:
    """What to do after a failed attempt: retry after ``delay``, or give up."""

    retry: bool
    reason: str
    delay: timedelta | None = None


def decide(policy: RetryPolicy, error: BaseException, attempt: int) -> RetryDecision:
    """Decide whether attempt ``attempt`` (1-based), which failed with ``error``, is retried."""
    code = error_of(error).code
    if not is_retryable(error):
        return RetryDecision(False, f"attempt {attempt} failed with {code}, which is not retryable")
    if attempt >= policy.max_attempts:
        return RetryDecision(
            False,
            f"attempt {attempt} of {policy.max_attempts} failed with {code}; no attempts left",
        )
    delay = policy.delay(attempt)
    return RetryDecision(
        True,
        f"attempt {attempt} of {policy.max_attempts} failed with {code}; "
        f"retry in {delay.total_seconds():g}s",
        delay,
    )


def error_of(error: BaseException) -> JobError:
    """Describe an exception as a job error (code, masked message, retryable)."""
    if isinstance(error, StrongroomError):
        return JobError(error.code, mask(error.message), error.retryable)
    return JobError(UNEXPECTED_ERROR_CODE, mask(f"{type(error).__name__}: {error}"), False)


def failure_component(job: JobView) -> str:
    """Return the name failure records use for a job: ``kind/resource/plan/rule``."""
    parts = [job.kind.value, job.resource or job.vault or "-"]
    if job.rule is not None:
        parts.append(job.rule)
    return "/".join(parts)


def handle_failure(
    work: Work,
    job: JobView,
    error: BaseException,
    *,
    guard: JobGuard | None = None,
    retry_now: bool = False,
) -> JobView:
    """Record a failed attempt of a RUNNING job, then retry it or fail and escalate.

    A retry moves the job back to PENDING with ``attempt + 1`` and ``next_attempt_at`` per
    the policy (or now, with ``retry_now``, when the failure was not the job's own, e.g. a
    worker that died). Giving up moves it to FAILED, marks the failure record escalated
    and publishes ``backup.escalation``. Returns the job as it is now.
    """
    decision = decide(RetryPolicy.of_job(job), error, job.attempt)
    job_error = error_of(error)
    record = failures.record_failed_attempt(
        work.session,
        component=failure_component(job),
        at=work.now,
        error_code=job_error.code,
        error_message=job_error.message,
        job_id=job.id,
        resource_id=job.resource_id,
        rule_id=job.rule_id,
    )
    error_columns = {
        "error_code": job_error.code,
        "error_message": job_error.message,
        "error_retryable": job_error.retryable,
    }
    if decision.retry and decision.delay is not None:
        next_attempt_at = work.now if retry_now else work.now + decision.delay
        row = work.transition(
            job.id,
            JobState.PENDING,
            reason=decision.reason,
            expected=JobState.RUNNING,
            guard=guard,
            changes={
                **error_columns,
                "next_attempt_at": next_attempt_at,
            },
        )
        return work.view(row)
    row = work.transition(
        job.id,
        JobState.FAILED,
        reason=decision.reason,
        expected=JobState.RUNNING,
        guard=guard,
        changes=error_columns,
    )
    failures.mark_escalated(work.session, record.component, at=work.now)
    failed = work.view(row)
    if failed.kind is JobKind.VERIFY and failed.params.get("restore_test"):
        work.publish(RESTORE_TEST_FAILED, job.id, job_event_payload(failed, reason=decision.reason))
    work.publish(
        ESCALATION,
        job.id,
        job_event_payload(
            failed,
            reason=decision.reason,
            component=record.component,
            consecutive_failures=record.attempts,
            failing_since=record.first_at,
        ),
    )
    return failed

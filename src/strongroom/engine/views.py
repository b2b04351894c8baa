"""Read-only snapshots of jobs, safe to hand across threads and layers, and their JSON.

The engine never lets a SQLAlchemy row escape its session: callers, handlers and the
services layer get these frozen dataclasses instead. :func:`job_document` turns one into
the job's one JSON shape (:class:`strongroom.catalog.shapes.JobShape`, docs/events.md),
which ``--output json``, the job events and every later consumer share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strongroom.catalog.models import Job, JobTransition
from strongroom.catalog.shapes import (
    JobDescriptionShape,
    JobErrorShape,
    JobEventPayload,
    JobShape,
    TransitionShape,
)
from strongroom.catalog.types import JobKind, JobState

TERMINAL_STATES = frozenset(
    {JobState.COMPLETED, JobState.PARTIAL, JobState.FAILED, JobState.ABORTED, JobState.EXPIRED}
)
"""States a job never leaves."""


@dataclass(frozen=True)
class JobError:
    """Why a job (or its last attempt) failed."""

    code: str
    message: str
    retryable: bool


@dataclass(frozen=True)
class JobView:
    """A job as it was when read from the catalog."""

    id: str
    kind: JobKind
    state: JobState
    resource: str | None
    resource_type: str | None
    vault: str | None
    rule: str | None
    run_id: str | None
    attempt: int
    max_attempts: int
    retry_interval_seconds: float
    retry_backoff_rate: float
    allow_partial: bool
    created_at: datetime
    updated_at: datetime
    params: Mapping[str, Any] = field(default_factory=dict)
    next_attempt_at: datetime | None = None
    start_by: datetime | None = None
    complete_by: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: JobError | None = None
    result: Mapping[str, Any] | None = None
    progress: Mapping[str, Any] | None = None
    cancel_requested: bool = False
    cancel_reason: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    resource_id: int | None = None
    vault_id: int | None = None
    rule_id: int | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the job reached a state it never leaves."""
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class TransitionView:
    """One recorded state change of a job."""

    from_state: JobState | None
    to_state: JobState
    at: datetime
    reason: str
    attempt: int


def job_view(job: Job) -> JobView:
    """Snapshot a job row (call inside its session: it reads the resource, vault, rule)."""
    error = None
    if job.error_code is not None:
        error = JobError(job.error_code, job.error_message or "", bool(job.error_retryable))
    rule = f"{job.rule.plan.name}/{job.rule.name}" if job.rule is not None else None
    return JobView(
        id=job.id,
        kind=job.kind,
        state=job.state,
        resource=job.resource.name if job.resource is not None else None,
        resource_type=job.resource.type if job.resource is not None else None,
        vault=job.vault.name if job.vault is not None else None,
        rule=rule,
        run_id=job.run_id,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        retry_interval_seconds=job.retry_interval_seconds,
        retry_backoff_rate=job.retry_backoff_rate,
        allow_partial=job.allow_partial,
        created_at=job.created_at,
        updated_at=job.updated_at,
        params=dict(job.params),
        next_attempt_at=job.next_attempt_at,
        start_by=job.start_by,
        complete_by=job.complete_by,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=error,
        result=dict(job.result) if job.result is not None else None,
        progress=dict(job.progress) if job.progress is not None else None,
        cancel_requested=job.cancel_requested_at is not None,
        cancel_reason=job.cancel_reason,
        lease_owner=job.lease_owner,
        lease_expires_at=job.lease_expires_at,
        resource_id=job.resource_id,
        vault_id=job.vault_id,
        rule_id=job.rule_id,
    )


def transition_view(transition: JobTransition) -> TransitionView:
    """Snapshot a transition row."""
    return TransitionView(
        from_state=transition.from_state,
        to_state=transition.to_state,
        at=transition.at,
        reason=transition.reason,
        attempt=transition.attempt,
    )


def duration_seconds(job: JobView) -> float | None:
    """How long the job's last attempt ran (started to finished), or None."""
    if job.started_at is None or job.finished_at is None:
        return None
    return max(0.0, (job.finished_at - job.started_at).total_seconds())


def job_shape(job: JobView) -> JobShape:
    """The job in its one JSON shape (docs/events.md)."""
    error = job.error
    return JobShape(
        id=job.id,
        kind=job.kind,
        state=job.state,
        resource=job.resource,
        resource_type=job.resource_type,
        vault=job.vault,
        rule=job.rule,
        run_id=job.run_id,
        params=dict(job.params),
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        retry_interval_seconds=job.retry_interval_seconds,
        retry_backoff_rate=job.retry_backoff_rate,
        allow_partial=job.allow_partial,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_seconds=duration_seconds(job),
        next_attempt_at=job.next_attempt_at,
        start_by=job.start_by,
        complete_by=job.complete_by,
        progress=dict(job.progress) if job.progress is not None else None,
        cancel_requested=job.cancel_requested,
        cancel_reason=job.cancel_reason,
        worker=job.lease_owner,
        error=(
            JobErrorShape(code=error.code, message=error.message, retryable=error.retryable)
            if error is not None
            else None
        ),
        result=dict(job.result) if job.result is not None else None,
    )


def job_document(job: JobView) -> dict[str, Any]:
    """The job as JSON-ready data in its one shape (``--output json``, job events)."""
    return job_shape(job).model_dump(mode="json", by_alias=True)


def transition_shape(transition: TransitionView) -> TransitionShape:
    """One recorded state change in its JSON shape."""
    return TransitionShape(
        from_=transition.from_state,
        to=transition.to_state,
        at=transition.at,
        reason=transition.reason,
        attempt=transition.attempt,
    )


def description_document(job: JobView, transitions: list[TransitionView]) -> dict[str, Any]:
    """A job with its state changes, oldest first, as JSON-ready data (``describe-job``)."""
    shape = JobDescriptionShape(
        **dict(job_shape(job)), transitions=[transition_shape(item) for item in transitions]
    )
    return shape.model_dump(mode="json", by_alias=True)


def job_event_payload(
    job: JobView,
    *,
    from_state: JobState | None = None,
    reason: str | None = None,
    component: str | None = None,
    consecutive_failures: int | None = None,
    failing_since: datetime | None = None,
) -> dict[str, Any]:
    """The payload of a job event: the job in its one shape, and why the event happened
    (``from_state`` and ``reason`` for a state change; the rest for an escalation)."""
    payload = JobEventPayload(
        job=job_shape(job),
        from_state=from_state,
        reason=reason,
        component=component,
        consecutive_failures=consecutive_failures,
        failing_since=failing_since,
    )
    return payload.model_dump(mode="json", by_alias=True)


def job_view_of_document(document: Mapping[str, Any]) -> JobView:
    """Read a job back from its JSON shape (what an API client receives), so a remote
    client renders it as the local CLI does. Raises pydantic's ValidationError for a
    document that is not a job."""
    shape = JobShape.model_validate(
        {key: document[key] for key in document if key != "transitions"}
    )
    error = shape.error
    return JobView(
        id=shape.id,
        kind=shape.kind,
        state=shape.state,
        resource=shape.resource,
        resource_type=shape.resource_type,
        vault=shape.vault,
        rule=shape.rule,
        run_id=shape.run_id,
        attempt=shape.attempt,
        max_attempts=shape.max_attempts,
        retry_interval_seconds=shape.retry_interval_seconds,
        retry_backoff_rate=shape.retry_backoff_rate,
        allow_partial=shape.allow_partial,
        created_at=shape.created_at,
        updated_at=shape.updated_at,
        params=dict(shape.params),
        next_attempt_at=shape.next_attempt_at,
        start_by=shape.start_by,
        complete_by=shape.complete_by,
        started_at=shape.started_at,
        finished_at=shape.finished_at,
        error=JobError(error.code, error.message, error.retryable) if error is not None else None,
        result=dict(shape.result) if shape.result is not None else None,
        progress=dict(shape.progress) if shape.progress is not None else None,
        cancel_requested=shape.cancel_requested,
        cancel_reason=shape.cancel_reason,
        lease_owner=shape.worker,
    )


def transitions_of_document(document: Mapping[str, Any]) -> list[TransitionView]:
    """Read the transitions of a ``describe-job`` document back."""
    return [
        TransitionView(
            from_state=shape.from_,
            to_state=shape.to,
            at=shape.at,
            reason=shape.reason,
            attempt=shape.attempt,
        )
        for shape in (TransitionShape.model_validate(item) for item in document["transitions"])
    ]

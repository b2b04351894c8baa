"""How a RUNNING job ends: completed, partial, aborted or expired, or failed (see ``retry``).

The executor calls these with the guard of its lease, so that a worker whose lease was
taken away (it stalled; the job was recovered and handed to another worker) can no
longer finish the job: its transition loses with a ConflictError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.catalog import failures
from strongroom.catalog.jobs import JobGuard
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.context import FollowUps, Recorder
from strongroom.engine.events import ESCALATION_RESOLVED, POINT_CREATED, RESTORE_TEST_PASSED
from strongroom.engine.retry import failure_component, handle_failure
from strongroom.engine.states import Work
from strongroom.engine.views import JobView, job_event_payload
from strongroom.errors import AbortedError, PartialNotAllowedError

__all__ = ["PartialNotAllowedError", "abort", "complete", "handle_failure"]


def complete(
    work: Work,
    job: JobView,
    *,
    result: Mapping[str, Any],
    partial: bool = False,
    message: str = "",
    guard: JobGuard | None = None,
    record: Recorder | None = None,
    follow_ups: FollowUps | None = None,
    events: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
) -> JobView:
    """End a RUNNING job as COMPLETED, or PARTIAL when ``partial`` and the job allows it.

    A partial result for a job that does not allow one fails it (not retried, escalated)
    and ``record`` is not run. Otherwise ``record`` writes what the job leaves (a recovery
    point) in ``work``'s transaction, after the transition: when the guard's lease check
    loses (ConflictError) nothing is recorded, and whatever ``record`` raises undoes the
    transition with it once the caller's transaction rolls back. ``follow_ups``, before
    ``record``, returns the jobs to queue in the same transaction (see ``JobResult``);
    ``events`` are published after the outcome's own. A success resolves the component's
    failure record.
    """
    if partial and not job.allow_partial:
        return handle_failure(
            work,
            job,
            PartialNotAllowedError(
                f"the {job.kind} job finished with a partial result"
                + (f" ({message})" if message else "")
                + " but partial results are not allowed"
            ),
            guard=guard,
        )
    state = JobState.PARTIAL if partial else JobState.COMPLETED
    row = work.transition(
        job.id,
        state,
        reason=message or ("finished with a partial result" if partial else "finished"),
        expected=JobState.RUNNING,
        guard=guard,
        changes={
            "result": dict(result),
            "error_code": None,
            "error_message": None,
            "error_retryable": None,
        },
    )
    ended = work.view(row)
    if follow_ups is not None:
        queued = list(follow_ups(work.session, work.now))
        if queued:
            work.create_pending(queued, reason=f"queued by {job.kind.value} job {job.id}")
    component = failure_component(job)
    if failures.resolve(work.session, component, at=work.now):
        work.publish(ESCALATION_RESOLVED, job.id, job_event_payload(ended, component=component))
    _publish_outcome_events(work, ended)
    if events:
        work.publish_many(list(events))
    if record is not None:
        # Last: a record may end with a step outside the catalog (a source's checkpoint)
        # that must only happen once nothing else in the transaction can fail.
        record(work.session)
    return ended


def _publish_outcome_events(work: Work, ended: JobView) -> None:
    """Publish what a completed job means beyond its state: a new recovery point, a passed
    restore test (docs/events.md)."""
    payload = job_event_payload(ended)
    point_id = (ended.result or {}).get("point_id")
    if ended.kind is JobKind.BACKUP and isinstance(point_id, str):
        work.publish(POINT_CREATED, point_id, payload)
    if ended.kind is JobKind.VERIFY and ended.params.get("restore_test"):
        work.publish(RESTORE_TEST_PASSED, ended.id, payload)


def abort(
    work: Work,
    job: JobView,
    *,
    reason: str,
    state: JobState = JobState.ABORTED,
    guard: JobGuard | None = None,
) -> JobView:
    """End a job as ABORTED (cancelled) or EXPIRED (its window closed); never retried."""
    if state not in {JobState.ABORTED, JobState.EXPIRED}:
        raise ValueError(f"abort ends a job as ABORTED or EXPIRED, not {state}")
    error = AbortedError(reason)
    row = work.transition(
        job.id,
        state,
        reason=reason,
        expected=job.state,
        guard=guard,
        changes={
            "error_code": error.code,
            "error_message": reason,
            "error_retryable": False,
        },
    )
    return work.view(row)

"""Housekeeping any worker runs before claiming: dead workers' jobs, closed windows.

A worker renews the lease on each job it runs; a job whose lease ran out belongs to a
worker that died or stalled. Such a job counts the attempt as failed with the retryable
``WorkerLost`` error and goes back to PENDING at once (or FAILED when that was its last
attempt), so another worker picks it up. The guard on that transition re-checks that the
lease is really over, so a worker that renews at the last moment keeps its job.

A CREATED or PENDING job whose start window closed (``start_by``) becomes EXPIRED; a
RUNNING job of a dead worker whose completion window closed (``complete_by``) is ABORTED,
as a running job is when its window closes (AWS Backup: EXPIRED means "never started").
"""

from __future__ import annotations

from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.jobs import JobGuard
from strongroom.catalog.types import JobState
from strongroom.engine.outcomes import abort
from strongroom.engine.retry import handle_failure
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import JobView, job_view
from strongroom.errors import ConflictError, WorkerLostError
from strongroom.logs import get_logger

_logger = get_logger(__name__)


def recover_expired_leases(machine: JobStateMachine, *, limit: int = 100) -> list[JobView]:
    """Return the RUNNING jobs whose lease expired to PENDING (or FAILED, or ABORTED)."""
    with machine.catalog.session(readonly=True) as session:
        expired = [
            job_view(job)
            for job in catalog_jobs.list_expired_leases(
                session, now=machine.clock.now(), limit=limit
            )
        ]
    recovered: list[JobView] = []
    for job in expired:
        try:
            with machine.work() as work:
                guard = JobGuard(
                    attempt=job.attempt, lease_owner=job.lease_owner, lease_expired_by=work.now
                )
                if job.complete_by is not None and job.complete_by <= work.now:
                    view = abort(
                        work,
                        job,
                        reason=f"completion window closed at {job.complete_by.isoformat()} "
                        f"while worker {job.lease_owner} was unreachable",
                        state=JobState.ABORTED,
                        guard=guard,
                    )
                else:
                    error = WorkerLostError(
                        f"worker {job.lease_owner} stopped renewing its lease on job {job.id} "
                        f"(expired {job.lease_expires_at.isoformat() if job.lease_expires_at else '?'})"
                    )
                    view = handle_failure(work, job, error, guard=guard, retry_now=True)
        except ConflictError:
            continue  # renewed or finished in the meantime: nothing to recover
        _logger.warning(
            "recovered a job from a lost worker",
            extra={"job_id": job.id, "worker": job.lease_owner, "state": view.state.value},
        )
        recovered.append(view)
    return recovered


def expire_missed_starts(machine: JobStateMachine, *, limit: int = 100) -> list[JobView]:
    """Move CREATED/PENDING jobs whose start window closed to EXPIRED; return them."""
    with machine.catalog.session(readonly=True) as session:
        missed = [
            job_view(job)
            for job in catalog_jobs.list_missed_start(session, now=machine.clock.now(), limit=limit)
        ]
    expired: list[JobView] = []
    for job in missed:
        start_by = job.start_by.isoformat() if job.start_by else "?"
        try:
            with machine.work() as work:
                expired.append(
                    abort(
                        work,
                        job,
                        reason=f"start window closed at {start_by} before the job could start",
                        state=JobState.EXPIRED,
                    )
                )
        except ConflictError:
            continue  # claimed or cancelled in the meantime
    return expired

"""How a run ends: its state, its summary, and the ``backup.run.completed`` event.

A run ends once none of its jobs is waiting or running. Its state follows the seed's
orchestration (one summary notification per run) and the rule's ``allow_partial``:

* COMPLETED: every job COMPLETED (a run that selected nothing completes too);
* PARTIAL: some job ended PARTIAL, or some failed while others succeeded and the rule
  allows partial runs;
* FAILED: otherwise (every job failed, or some failed and partial runs are not allowed).

FAILED, ABORTED and EXPIRED jobs count as failed. Resources skipped because an earlier
backup was still queued or running (no pile-up) count as neither.

The summary, stored on the run row, holds the counts per outcome, total sizes, the run's
duration and one entry per resource (job, state, attempts, start, end, duration, sizes,
recovery point, error). The event carries the same without the per-resource list, plus
``problems``: the resources that did not simply complete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from strongroom.catalog import runs as catalog_runs
from strongroom.catalog.models import Job, RecoveryPoint, Run
from strongroom.catalog.types import JobState
from strongroom.engine.runs import RUN_COMPLETED
from strongroom.engine.states import JobStateMachine
from strongroom.logs import get_logger

_logger = get_logger(__name__)
_FAILED: Final = frozenset({JobState.FAILED, JobState.ABORTED, JobState.EXPIRED})
_SUCCEEDED: Final = frozenset({JobState.COMPLETED, JobState.PARTIAL})
_OUTCOMES: Final = (
    JobState.COMPLETED,
    JobState.PARTIAL,
    JobState.FAILED,
    JobState.ABORTED,
    JobState.EXPIRED,
)


@dataclass(frozen=True)
class RunView:
    """A run as read from the catalog."""

    id: str
    plan: str | None
    rule: str | None
    fired_at: datetime
    finished_at: datetime | None
    state: JobState
    summary: Mapping[str, Any] = field(default_factory=dict)


def run_view(row: Run) -> RunView:
    """Snapshot a run row."""
    summary = dict(row.summary)
    return RunView(
        id=row.id,
        plan=summary.get("plan"),
        rule=summary.get("rule"),
        fired_at=row.fired_at,
        finished_at=row.finished_at,
        state=row.state,
        summary=summary,
    )


def run_state(job_states: Sequence[JobState], *, allow_partial: bool) -> JobState:
    """Return the state a run ends in, given the states its jobs ended in."""
    failed = sum(state in _FAILED for state in job_states)
    succeeded = sum(state in _SUCCEEDED for state in job_states)
    if failed == 0:
        return JobState.PARTIAL if JobState.PARTIAL in job_states else JobState.COMPLETED
    if allow_partial and succeeded > 0:
        return JobState.PARTIAL
    return JobState.FAILED


def summarize(
    run: Run, jobs: Sequence[Job], points: Mapping[str, RecoveryPoint], now: datetime
) -> dict[str, Any]:
    """Return the finished summary of ``run`` from its jobs and their recovery points."""
    header = dict(run.summary)
    skipped = list(header.get("skipped", []))
    resources = [_resource_entry(job, points.get(job.id)) for job in jobs]
    counts = Counter(job.state.value.lower() for job in jobs)
    starts = [job.started_at for job in jobs if job.started_at is not None]
    return header | {
        "state": run_state(
            [job.state for job in jobs], allow_partial=bool(header.get("allow_partial"))
        ).value,
        "fired_at": run.fired_at.isoformat(),
        "started_at": min(starts).isoformat() if starts else None,
        "finished_at": now.isoformat(),
        "duration_seconds": (now - run.fired_at).total_seconds(),
        "counts": {
            "selected": int(header.get("selected", len(jobs) + len(skipped))),
            "jobs": len(jobs),
            **{state.value.lower(): counts.get(state.value.lower(), 0) for state in _OUTCOMES},
            "skipped": len(skipped),
        },
        "logical_size": sum(entry["logical_size"] or 0 for entry in resources),
        "stored_size": sum(entry["stored_size"] or 0 for entry in resources),
        "resources": resources,
        "skipped": skipped,
    }


def event_payload(run_id: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The ``backup.run.completed`` payload: the summary without the per-resource list,
    plus the resources that did not simply complete."""
    payload = {key: value for key, value in summary.items() if key != "resources"}
    payload["run_id"] = run_id
    payload["problems"] = [
        entry for entry in summary.get("resources", []) if entry["state"] != JobState.COMPLETED
    ]
    return payload


def finish_ended_runs(machine: JobStateMachine, *, limit: int = 100) -> list[RunView]:
    """Finish every RUNNING run whose jobs have all ended; return them.

    Each run is finished in a transaction of its own with a conditional update, so two
    schedulers never finish (and announce) one run twice.
    """
    with machine.catalog.session(readonly=True) as session:
        ended = [run.id for run in catalog_runs.list_ended_runs(session, limit=limit)]
    finished: list[RunView] = []
    for run_id in ended:
        with machine.work() as work:
            run = catalog_runs.get_run(work.session, run_id)
            if run.state is not JobState.RUNNING:
                continue
            jobs = catalog_runs.run_jobs(work.session, run_id)
            points = catalog_runs.points_of_jobs(work.session, [job.id for job in jobs])
            summary = summarize(run, jobs, points, work.now)
            state = JobState(summary["state"])
            if not catalog_runs.finish_run(
                work.session, run_id, state=state, at=work.now, summary=summary
            ):
                continue
            work.publish(RUN_COMPLETED, run_id, event_payload(run_id, summary))
            finished.append(run_view(catalog_runs.get_run(work.session, run_id)))
        _logger.info(
            "run finished",
            extra={"run_id": run_id, "state": state.value, "plan": summary.get("plan")},
        )
    return finished


def _resource_entry(job: Job, point: RecoveryPoint | None) -> dict[str, Any]:
    result = job.result or {}
    duration = (
        (job.finished_at - job.started_at).total_seconds()
        if job.finished_at is not None and job.started_at is not None
        else None
    )
    return {
        "resource": job.resource.name if job.resource is not None else None,
        "job_id": job.id,
        "state": job.state.value,
        "attempts": job.attempt,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "duration_seconds": duration,
        "logical_size": point.logical_size if point is not None else _size(result, "logical_size"),
        "stored_size": point.stored_size if point is not None else _size(result, "stored_size"),
        "recovery_point": point.id if point is not None else result.get("recovery_point"),
        "error": (
            {"code": job.error_code, "message": job.error_message}
            if job.error_code is not None
            else None
        ),
    }


def _size(result: Mapping[str, Any], key: str) -> int | None:
    value = result.get(key)
    return value if isinstance(value, int) else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

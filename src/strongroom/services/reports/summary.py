"""``strongroom report``: what the jobs of a period did, and how fresh each resource's backup is.

The *summary* covers the jobs created in ``[since, until)`` (default: the last 24 h):

* ``jobs``: totals by state and by kind;
* ``backups``: backup jobs by state, success rate (COMPLETED / jobs that ended; PARTIAL,
  FAILED, ABORTED and EXPIRED count against it), how long the last attempt of the
  successful ones (COMPLETED or PARTIAL) ran (average, maximum), and their sizes
  (logical: bytes the source produced; stored: stored bytes the points reference; new:
  bytes these backups added to the vaults);
* ``resources``: per declared resource, its newest usable recovery point (any time, not
  only the period), its age at ``until``, and ``stale`` when older than ``max_age`` (24 h
  by default) or missing; plus its backups and failed backups in the period;
* ``failures``: every job of the period that ended FAILED, ABORTED or EXPIRED, with its
  error.

The *detailed* report is one row per job of the period, newest first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from strongroom.catalog.points import list_recovery_points
from strongroom.catalog.resources import list_resources
from strongroom.catalog.types import JobKind, JobState, PointState
from strongroom.engine.views import JobView, duration_seconds
from strongroom.services.audit.trail import record_alone
from strongroom.services.context import AppContext
from strongroom.services.jobs.operations import OperationsService
from strongroom.services.jobs.views import iso

DEFAULT_PERIOD: Final = timedelta(hours=24)
DEFAULT_MAX_AGE: Final = timedelta(hours=24)
_ENDED_BADLY: Final = (JobState.FAILED, JobState.ABORTED, JobState.EXPIRED)
_SUCCEEDED: Final = (JobState.COMPLETED, JobState.PARTIAL)


@dataclass(frozen=True)
class ResourceStatus:
    """How fresh one resource's backups are."""

    resource: str
    type: str
    last_point_id: str | None
    last_backup_at: datetime | None
    age_seconds: float | None
    stale: bool
    backups_in_period: int
    failed_in_period: int


@dataclass(frozen=True)
class Failure:
    """A job of the period that did not succeed."""

    job_id: str
    kind: str
    resource: str | None
    vault: str | None
    state: str
    attempts: int
    finished_at: datetime | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True)
class Summary:
    """The ``report summary`` of one period; :meth:`as_json` is what ``-o json`` prints."""

    since: datetime
    until: datetime
    max_age: timedelta
    jobs_by_state: dict[str, int]
    jobs_by_kind: dict[str, dict[str, int]]
    backups_by_state: dict[str, int]
    success_rate: float | None
    duration_average_seconds: float | None
    duration_max_seconds: float | None
    logical_size: int
    stored_size: int
    new_stored_size: int
    resources: list[ResourceStatus] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def jobs_total(self) -> int:
        """Jobs created in the period."""
        return sum(self.jobs_by_state.values())

    @property
    def backups_total(self) -> int:
        """Backup jobs created in the period."""
        return sum(self.backups_by_state.values())

    def as_json(self) -> dict[str, Any]:
        """The summary as JSON (stable field names; times in ISO 8601, UTC)."""
        return {
            "period": {"since": iso(self.since), "until": iso(self.until)},
            "jobs": {
                "total": self.jobs_total,
                "by_state": dict(self.jobs_by_state),
                "by_kind": {kind: dict(states) for kind, states in self.jobs_by_kind.items()},
            },
            "backups": {
                "total": self.backups_total,
                "by_state": dict(self.backups_by_state),
                "completed": self.backups_by_state.get(JobState.COMPLETED.value, 0),
                "partial": self.backups_by_state.get(JobState.PARTIAL.value, 0),
                "failed": self.backups_by_state.get(JobState.FAILED.value, 0),
                "running": self.backups_by_state.get(JobState.RUNNING.value, 0),
                "success_rate": self.success_rate,
                "duration_seconds": {
                    "average": self.duration_average_seconds,
                    "max": self.duration_max_seconds,
                },
                "logical_size": self.logical_size,
                "stored_size": self.stored_size,
                "new_stored_size": self.new_stored_size,
            },
            "max_age_seconds": self.max_age.total_seconds(),
            "resources": [
                {
                    "resource": item.resource,
                    "type": item.type,
                    "last_point_id": item.last_point_id,
                    "last_backup_at": iso(item.last_backup_at),
                    "age_seconds": item.age_seconds,
                    "stale": item.stale,
                    "backups_in_period": item.backups_in_period,
                    "failed_in_period": item.failed_in_period,
                }
                for item in self.resources
            ],
            "failures": [
                {
                    "job_id": item.job_id,
                    "kind": item.kind,
                    "resource": item.resource,
                    "vault": item.vault,
                    "state": item.state,
                    "attempts": item.attempts,
                    "finished_at": iso(item.finished_at),
                    "error_code": item.error_code,
                    "error_message": item.error_message,
                }
                for item in self.failures
            ],
        }


class ReportService:
    """Builds the summary and detailed reports from the catalog."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.operations = OperationsService(context)

    def summary(
        self,
        since: datetime | None = None,
        *,
        until: datetime | None = None,
        max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> Summary:
        """Summarise the jobs created in ``[since, until)`` (default: the last 24 h)."""
        until = until or self.context.now()
        since = since or until - DEFAULT_PERIOD
        jobs = [job for job in self.operations.list_jobs(since=since) if job.created_at < until]
        by_kind: dict[str, Counter[str]] = {}
        for job in jobs:
            by_kind.setdefault(job.kind.value, Counter())[job.state.value] += 1
        backups = [job for job in jobs if job.kind is JobKind.BACKUP]
        backup_states = Counter(job.state.value for job in backups)
        ended = [job for job in backups if job.is_terminal]
        succeeded = [job for job in backups if job.state in _SUCCEEDED]
        durations = [value for job in succeeded if (value := duration_seconds(job)) is not None]
        self._audit("summary", since, until)
        return Summary(
            since=since,
            until=until,
            max_age=max_age,
            jobs_by_state=dict(Counter(job.state.value for job in jobs)),
            jobs_by_kind={kind: dict(states) for kind, states in sorted(by_kind.items())},
            backups_by_state=dict(backup_states),
            success_rate=(
                round(backup_states.get(JobState.COMPLETED.value, 0) / len(ended), 4)
                if ended
                else None
            ),
            duration_average_seconds=(
                round(sum(durations) / len(durations), 3) if durations else None
            ),
            duration_max_seconds=round(max(durations), 3) if durations else None,
            logical_size=_total(succeeded, "logical_size"),
            stored_size=_total(succeeded, "stored_size"),
            new_stored_size=_total(succeeded, "new_stored_size"),
            resources=self._resources(backups, until, max_age),
            failures=[_failure(job) for job in jobs if job.state in _ENDED_BADLY],
        )

    def detailed(
        self,
        since: datetime | None = None,
        *,
        until: datetime | None = None,
        kinds: Collection[JobKind] | None = None,
    ) -> list[dict[str, Any]]:
        """One row per job created in ``[since, until)``, newest first."""
        until = until or self.context.now()
        since = since or until - DEFAULT_PERIOD
        self._audit("detailed", since, until)
        return [
            detail_row(job)
            for job in self.operations.list_jobs(since=since, kinds=kinds)
            if job.created_at < until
        ]

    def _audit(self, kind: str, since: datetime, until: datetime) -> None:
        record_alone(
            self.context,
            action="report.generate",
            subject=kind,
            outcome="succeeded",
            details={"since": since.isoformat(), "until": until.isoformat()},
        )

    def _resources(
        self, backups: list[JobView], until: datetime, max_age: timedelta
    ) -> list[ResourceStatus]:
        statuses: list[ResourceStatus] = []
        with self.context.catalog.session(readonly=True) as session:
            for resource in list_resources(session):
                newest = list_recovery_points(
                    session,
                    resource=resource.name,
                    states=[PointState.AVAILABLE, PointState.PARTIAL],
                    until=until,
                    limit=1,
                )
                point = newest[0] if newest else None
                at = (point.completed_at or point.created_at) if point is not None else None
                age = (until - at).total_seconds() if at is not None else None
                mine = [job for job in backups if job.resource == resource.name]
                statuses.append(
                    ResourceStatus(
                        resource=resource.name,
                        type=resource.type,
                        last_point_id=point.id if point is not None else None,
                        last_backup_at=at,
                        age_seconds=age,
                        stale=age is None or age > max_age.total_seconds(),
                        backups_in_period=len(mine),
                        failed_in_period=sum(1 for job in mine if job.state in _ENDED_BADLY),
                    )
                )
        return statuses


def _total(jobs: list[JobView], key: str) -> int:
    total = 0
    for job in jobs:
        value = (job.result or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            total += value
    return total


def _failure(job: JobView) -> Failure:
    return Failure(
        job_id=job.id,
        kind=job.kind.value,
        resource=job.resource,
        vault=job.vault,
        state=job.state.value,
        attempts=job.attempt,
        finished_at=job.finished_at,
        error_code=job.error.code if job.error else None,
        error_message=job.error.message if job.error else None,
    )


def detail_row(job: JobView) -> dict[str, Any]:
    """One row of ``report detailed`` (the seed's per-job fields, and sizes and errors)."""
    result = job.result or {}
    return {
        "job_id": job.id,
        "kind": job.kind.value,
        "resource": job.resource,
        "resource_type": job.resource_type,
        "vault": job.vault,
        "rule": job.rule,
        "state": job.state.value,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "duration_seconds": duration_seconds(job),
        "point_id": result.get("point_id"),
        "logical_size": result.get("logical_size"),
        "stored_size": result.get("stored_size"),
        "new_stored_size": result.get("new_stored_size"),
        "error_code": job.error.code if job.error else None,
        "error_message": job.error.message if job.error else None,
    }

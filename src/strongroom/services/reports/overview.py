"""The console's overview: how well backups protect things right now, from aggregate queries.

:meth:`OverviewService.overview` reads, in one read-only session and without loading a
row per job or per point (so it stays fast on a catalog of 100k points and 1M events):

* the **success rate** of the backup jobs created in the window (default 24 h) that
  ended: ``COMPLETED`` over every ended state, counted with ``GROUP BY state``;
* the **backup age** of every declared resource (its newest live point) against its
  recovery point objective, which is the monitor's backup-age threshold (the
  configuration's ``monitor`` section, per resource overridable; docs/monitor.md);
* the **failures** in the window, per job kind and resource (what ``monitor`` alerts on);
* the **storage** of live points per vault and tier (a ``SUM`` per group);
* the **replication lag** of every copy pair (``report replication-lag``);
* how many jobs run and wait now.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.catalog import measures
from strongroom.catalog.models import Job, RecoveryPoint, Resource, Vault
from strongroom.catalog.types import JobKind, JobState, PointState
from strongroom.services.context import AppContext
from strongroom.services.reports.lag import CopyPairLag, ReplicationService
from strongroom.services.reports.monitor import MonitorService

DEFAULT_WINDOW: Final = timedelta(hours=24)
_LIVE: Final = (PointState.AVAILABLE, PointState.PARTIAL)


@dataclass(frozen=True)
class ResourceAge:
    """A resource's newest live point against its recovery point objective (RPO)."""

    resource: str
    resource_type: str
    newest_at: datetime | None
    age_seconds: float | None
    """Seconds since the newest live point; None when the resource has none."""
    rpo_seconds: float

    @property
    def within_rpo(self) -> bool:
        """True when the newest live point is younger than the RPO."""
        return self.age_seconds is not None and self.age_seconds <= self.rpo_seconds

    def as_json(self) -> dict[str, Any]:
        """The resource's age as JSON."""
        return {
            "resource": self.resource,
            "resource_type": self.resource_type,
            "newest_at": self.newest_at.isoformat() if self.newest_at else None,
            "age_seconds": self.age_seconds,
            "rpo_seconds": self.rpo_seconds,
            "within_rpo": self.within_rpo,
        }


@dataclass(frozen=True)
class VaultStorage:
    """Stored bytes of the live points of one vault in one tier."""

    vault: str
    tier: str
    stored_bytes: int


@dataclass(frozen=True)
class Overview:
    """What the console's overview page shows (see the module docstring)."""

    at: datetime
    window_seconds: float
    backups_ended: int
    backups_completed: int
    resources: list[ResourceAge]
    failures: list[measures.RecentFailures]
    storage: list[VaultStorage]
    lag: list[CopyPairLag]
    running: int
    waiting: int
    by_state: dict[str, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        """Completed backups over ended backups in the window; None when none ended."""
        if not self.backups_ended:
            return None
        return self.backups_completed / self.backups_ended

    @property
    def outside_rpo(self) -> int:
        """How many resources have no live point younger than their RPO."""
        return sum(1 for age in self.resources if not age.within_rpo)

    def as_json(self) -> dict[str, Any]:
        """The overview as JSON."""
        return {
            "at": self.at.isoformat(),
            "window_seconds": self.window_seconds,
            "backups": {
                "ended": self.backups_ended,
                "completed": self.backups_completed,
                "success_rate": self.success_rate,
                "by_state": self.by_state,
            },
            "resources": [age.as_json() for age in self.resources],
            "failures": [
                {
                    "kind": failure.kind,
                    "resource": failure.resource,
                    "count": failure.count,
                    "last_error_code": failure.last_error_code,
                    "last_at": failure.last_at.isoformat(),
                }
                for failure in self.failures
            ],
            "storage": [
                {"vault": item.vault, "tier": item.tier, "stored_bytes": item.stored_bytes}
                for item in self.storage
            ],
            "replication_lag": [pair.as_json() for pair in self.lag],
            "jobs": {"running": self.running, "waiting": self.waiting},
        }


class OverviewService:
    """Builds the :class:`Overview` of one context's catalog."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def overview(self, *, window: timedelta = DEFAULT_WINDOW) -> Overview:
        """Return the overview at the context's now, over the last ``window``."""
        now = self.context.now()
        since = now - window
        monitor = MonitorService(self.context).config()
        with self.context.catalog.session(readonly=True) as session:
            by_state = _backup_states(session, since)
            ages = [
                ResourceAge(
                    resource=name,
                    resource_type=resource_type,
                    newest_at=newest,
                    age_seconds=(now - newest).total_seconds() if newest else None,
                    rpo_seconds=3600
                    * (
                        (override.backup_age_hours if override else None)
                        or monitor.backup_age_hours
                    ),
                )
                for name, resource_type, newest in _newest_points(session)
                for override in [monitor.resources.get(name)]
            ]
            failures = measures.recent_failures(session, since=since)
            storage = [
                VaultStorage(vault, tier, size)
                for (vault, tier), size in sorted(measures.stored_bytes(session).items())
            ]
            running = _count_jobs(session, (JobState.RUNNING,))
            waiting = _count_jobs(session, (JobState.CREATED, JobState.PENDING))
        ended = sum(count for state, count in by_state.items() if state in _ENDED_NAMES)
        return Overview(
            at=now,
            window_seconds=window.total_seconds(),
            backups_ended=ended,
            backups_completed=by_state.get(JobState.COMPLETED.value, 0),
            resources=ages,
            failures=sorted(failures, key=lambda failure: failure.last_at, reverse=True),
            storage=storage,
            lag=ReplicationService(self.context).lag(),
            running=running,
            waiting=waiting,
            by_state=by_state,
        )

    def vault_names(self) -> list[str]:
        """The names of every registered vault, sorted."""
        with self.context.catalog.session(readonly=True) as session:
            return sorted(session.scalars(select(Vault.name)))


_ENDED_NAMES: Final = frozenset(state.value for state in measures.ENDED)


def _backup_states(session: Session, since: datetime) -> dict[str, int]:
    # Counted here rather than with GROUP BY state: grouping makes SQLite walk the whole
    # (state, …) index of every job ever kept, where the window's jobs are a short range
    # of the created_at index (a day's jobs, not the catalog's).
    statement = select(Job.state).where(Job.kind == JobKind.BACKUP, Job.created_at >= since)
    return dict(Counter(JobState(state).value for state in session.scalars(statement)))


def _newest_points(session: Session) -> list[tuple[str, str, datetime | None]]:
    # One correlated MAX per resource walks the (resource_id, created_at) index.
    newest = (
        select(func.max(RecoveryPoint.created_at))
        .where(RecoveryPoint.resource_id == Resource.id, RecoveryPoint.state.in_(_LIVE))
        .correlate(Resource)
        .scalar_subquery()
    )
    statement = select(Resource.name, Resource.type, newest).order_by(Resource.name)
    return [(name, kind, at) for name, kind, at in session.execute(statement)]


def _count_jobs(session: Session, states: tuple[JobState, ...]) -> int:
    statement = select(func.count()).select_from(Job).where(Job.state.in_(states))
    return int(session.scalar(statement) or 0)

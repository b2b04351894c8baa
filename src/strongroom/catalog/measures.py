"""The catalog reads behind the Prometheus metrics: counts, sizes and ages, grouped.

Every function reads in the caller's session and returns plain rows, grouped by the
labels ``metrics/`` exposes (resource, resource type, rule, vault, tier, job kind, state,
error code): all of them are bounded by what the configuration declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.catalog.models import (
    Job,
    Lease,
    Plan,
    RecoveryPoint,
    Resource,
    Rule,
    Run,
    Vault,
)
from strongroom.catalog.types import JobKind, JobState, PointState, Tier

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ENDED = (
    JobState.COMPLETED,
    JobState.PARTIAL,
    JobState.FAILED,
    JobState.ABORTED,
    JobState.EXPIRED,
)


@dataclass(frozen=True)
class EndedJob:
    """One ended job, with the names its metrics are labelled by."""

    kind: str
    resource: str
    resource_type: str
    rule: str
    state: str
    error_code: str
    duration_seconds: float | None
    logical_size: int
    stored_size: int
    new_stored_size: int


def ended_jobs(session: Session) -> list[EndedJob]:
    """Return every ended job still in the catalog (job history pruning removes old ones)."""
    rule_name = (Plan.name + "/" + Rule.name).label("rule")
    statement = (
        select(Job, Resource.name, Resource.type, rule_name)
        .outerjoin(Resource, Job.resource_id == Resource.id)
        .outerjoin(Rule, Job.rule_id == Rule.id)
        .outerjoin(Plan, Rule.plan_id == Plan.id)
        .where(Job.state.in_(ENDED))
    )
    rows: list[EndedJob] = []
    for job, resource, resource_type, rule in session.execute(statement):
        result = job.result or {}
        duration = (
            (job.finished_at - job.started_at).total_seconds()
            if job.finished_at is not None and job.started_at is not None
            else None
        )
        rows.append(
            EndedJob(
                kind=job.kind.value,
                resource=resource or "",
                resource_type=resource_type or "",
                rule=rule or "",
                state=job.state.value,
                error_code=job.error_code or "",
                duration_seconds=duration,
                logical_size=_int(result.get("logical_size")),
                stored_size=_int(result.get("stored_size")),
                new_stored_size=_int(result.get("new_stored_size")),
            )
        )
    return rows


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class ResourcePoints:
    """The newest recovery point of a resource and what is known of its checks."""

    resource: str
    resource_type: str
    declared_at: datetime
    oldest_at: datetime | None
    newest_at: datetime | None
    newest_logical_size: int
    newest_stored_size: int
    verified_at: datetime | None
    verified_ok: bool | None
    restore_tested_at: datetime | None
    restore_test_ok: bool | None


def resource_points(session: Session) -> list[ResourcePoints]:
    """Return, per declared resource, its newest live point and its latest verify and
    restore test (over all its live points)."""
    live = (PointState.AVAILABLE, PointState.PARTIAL)
    found: list[ResourcePoints] = []
    for resource in session.scalars(select(Resource).order_by(Resource.name)):
        points = list(
            session.scalars(
                select(RecoveryPoint)
                .where(RecoveryPoint.resource_id == resource.id, RecoveryPoint.state.in_(live))
                .order_by(RecoveryPoint.created_at.desc())
            )
        )
        newest = points[0] if points else None
        verified = max(
            (point for point in points if point.verified_at is not None),
            key=lambda point: point.verified_at or _EPOCH,
            default=None,
        )
        tested = max(
            (point for point in points if point.restore_tested_at is not None),
            key=lambda point: point.restore_tested_at or _EPOCH,
            default=None,
        )
        found.append(
            ResourcePoints(
                resource=resource.name,
                resource_type=resource.type,
                declared_at=resource.created_at,
                oldest_at=points[-1].created_at if points else None,
                newest_at=newest.created_at if newest else None,
                newest_logical_size=newest.logical_size if newest else 0,
                newest_stored_size=newest.stored_size if newest else 0,
                verified_at=verified.verified_at if verified else None,
                verified_ok=_ok(verified.verification_result) if verified else None,
                restore_tested_at=tested.restore_tested_at if tested else None,
                restore_test_ok=_ok(tested.restore_test_result) if tested else None,
            )
        )
    return found


def _ok(result: dict[str, object] | None) -> bool | None:
    if result is None:
        return None
    value = result.get("ok")
    return bool(value) if value is not None else None


def stored_bytes(session: Session) -> dict[tuple[str, str], int]:
    """Return the stored bytes of live points by (vault, tier); every vault has both tiers."""
    names = dict(session.execute(select(Vault.id, Vault.name)).tuples().all())
    totals = {(vault, tier.value): 0 for vault in names.values() for tier in Tier}
    # Grouped by vault id, without a join: the storage-totals index covers the query.
    statement = (
        select(RecoveryPoint.vault_id, RecoveryPoint.tier, func.sum(RecoveryPoint.stored_size))
        .where(RecoveryPoint.state.in_((PointState.AVAILABLE, PointState.PARTIAL)))
        .group_by(RecoveryPoint.vault_id, RecoveryPoint.tier)
    )
    for vault_id, tier, total in session.execute(statement):
        totals[(names[vault_id], Tier(tier).value)] = int(total or 0)
    return totals


def run_outcomes(session: Session, *, since: datetime) -> dict[str, tuple[int, int]]:
    """Return, per ``plan/rule``, (runs that produced every point, ended runs) since ``since``."""
    rule_name = (Plan.name + "/" + Rule.name).label("rule")
    statement = (
        select(rule_name, Run.state, func.count())
        .select_from(Run)
        .join(Rule, Run.rule_id == Rule.id)
        .join(Plan, Rule.plan_id == Plan.id)
        .where(Run.fired_at >= since, Run.finished_at.is_not(None))
        .group_by(rule_name, Run.state)
    )
    outcomes: dict[str, tuple[int, int]] = {}
    declared = (
        select(Plan.name + "/" + Rule.name).select_from(Rule).join(Plan, Rule.plan_id == Plan.id)
    )
    for rule in session.scalars(declared):
        outcomes[rule] = (0, 0)
    for rule, state, count in session.execute(statement):
        good, total = outcomes.get(rule, (0, 0))
        good += count if JobState(state) is JobState.COMPLETED else 0
        outcomes[rule] = (good, total + count)
    return outcomes


def queue_depth(session: Session) -> dict[str, int]:
    """Return the number of jobs waiting (CREATED or PENDING) by kind; every kind listed."""
    depth = {kind.value: 0 for kind in JobKind}
    statement = (
        select(Job.kind, func.count())
        .where(Job.state.in_((JobState.CREATED, JobState.PENDING)))
        .group_by(Job.kind)
    )
    for kind, count in session.execute(statement):
        depth[JobKind(kind).value] = int(count)
    return depth


@dataclass(frozen=True)
class RecentFailures:
    """Jobs of one kind and resource that failed since a time."""

    kind: str
    resource: str
    count: int
    last_error_code: str
    last_at: datetime


def recent_failures(session: Session, *, since: datetime) -> list[RecentFailures]:
    """Return, per job kind and resource (or vault), the jobs that ended FAILED, ABORTED or
    EXPIRED since ``since``; newest error last."""
    statement = (
        select(Job, Resource.name, Vault.name)
        .outerjoin(Resource, Job.resource_id == Resource.id)
        .outerjoin(Vault, Job.vault_id == Vault.id)
        .where(
            Job.state.in_((JobState.FAILED, JobState.ABORTED, JobState.EXPIRED)),
            Job.finished_at >= since,
        )
        .order_by(Job.finished_at)
    )
    found: dict[tuple[str, str], RecentFailures] = {}
    for job, resource, vault in session.execute(statement):
        key = (job.kind.value, resource or vault or "-")
        before = found.get(key)
        found[key] = RecentFailures(
            kind=key[0],
            resource=key[1],
            count=(before.count if before else 0) + 1,
            last_error_code=job.error_code or "",
            last_at=job.finished_at or since,
        )
    return list(found.values())


def last_scheduler_tick(session: Session, lease_name: str) -> datetime | None:
    """Return when the scheduling daemon last renewed its lease (once per tick), or None."""
    lease = session.get(Lease, lease_name, populate_existing=True)
    return lease.renewed_at if lease is not None else None


__all__ = [
    "EndedJob",
    "ResourcePoints",
    "ended_jobs",
    "last_scheduler_tick",
    "queue_depth",
    "resource_points",
    "run_outcomes",
    "stored_bytes",
]

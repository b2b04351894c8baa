"""Read-only snapshots of recovery points, and the JSON every interface prints for jobs.

The CLI (``--output json``) and the API render jobs, transitions and recovery points
through these functions, so both show the same fields with the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strongroom.catalog.models import RecoveryPoint as PointRow
from strongroom.catalog.types import PointState, Tier
from strongroom.engine.views import JobView, TransitionView


@dataclass(frozen=True)
class PointView:
    """A recovery point as the catalog records it."""

    id: str
    vault: str
    resource: str
    resource_type: str
    job_id: str | None
    state: PointState
    tier: Tier
    created_at: datetime
    completed_at: datetime | None
    logical_size: int
    stored_size: int
    tags: Mapping[str, str] = field(default_factory=dict)
    move_to_cold_at: datetime | None = None
    delete_at: datetime | None = None
    legal_hold: bool = False
    verified_at: datetime | None = None
    verification: Mapping[str, Any] | None = None
    restore_tested_at: datetime | None = None
    restore_test: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobDescription:
    """One job with its recorded state changes, oldest first."""

    job: JobView
    transitions: list[TransitionView]


def point_view(row: PointRow) -> PointView:
    """Snapshot a recovery point row (call inside its session: it reads vault and resource)."""
    return PointView(
        id=row.id,
        vault=row.vault.name,
        resource=row.resource.name,
        resource_type=row.resource.type,
        job_id=row.job_id,
        state=row.state,
        tier=row.tier,
        created_at=row.created_at,
        completed_at=row.completed_at,
        logical_size=row.logical_size,
        stored_size=row.stored_size,
        tags=dict(row.tags),
        move_to_cold_at=row.move_to_cold_at,
        delete_at=row.delete_at,
        legal_hold=row.legal_hold,
        verified_at=row.verified_at,
        verification=dict(row.verification_result) if row.verification_result else None,
        restore_tested_at=row.restore_tested_at,
        restore_test=dict(row.restore_test_result) if row.restore_test_result else None,
        metadata=dict(row.metadata_),
    )


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 text, or None."""
    return value.isoformat() if value is not None else None


def duration_seconds(job: JobView) -> float | None:
    """How long the job's last attempt ran (started to finished), or None."""
    if job.started_at is None or job.finished_at is None:
        return None
    return max(0.0, (job.finished_at - job.started_at).total_seconds())


def job_json(job: JobView) -> dict[str, Any]:
    """The JSON of one job (``describe-job``, ``list-backups`` and the API)."""
    error = job.error
    return {
        "id": job.id,
        "kind": job.kind.value,
        "state": job.state.value,
        "resource": job.resource,
        "resource_type": job.resource_type,
        "vault": job.vault,
        "rule": job.rule,
        "run_id": job.run_id,
        "params": dict(job.params),
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "retry_interval_seconds": job.retry_interval_seconds,
        "retry_backoff_rate": job.retry_backoff_rate,
        "allow_partial": job.allow_partial,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "duration_seconds": duration_seconds(job),
        "next_attempt_at": iso(job.next_attempt_at),
        "start_by": iso(job.start_by),
        "complete_by": iso(job.complete_by),
        "progress": dict(job.progress) if job.progress is not None else None,
        "cancel_requested": job.cancel_requested,
        "cancel_reason": job.cancel_reason,
        "worker": job.lease_owner,
        "error": (
            {"code": error.code, "message": error.message, "retryable": error.retryable}
            if error is not None
            else None
        ),
        "result": dict(job.result) if job.result is not None else None,
    }


def transition_json(transition: TransitionView) -> dict[str, Any]:
    """The JSON of one recorded state change."""
    return {
        "from": transition.from_state.value if transition.from_state is not None else None,
        "to": transition.to_state.value,
        "at": iso(transition.at),
        "reason": transition.reason,
        "attempt": transition.attempt,
    }


def description_json(description: JobDescription) -> dict[str, Any]:
    """The JSON of ``describe-job``: the job plus its transitions."""
    return {
        **job_json(description.job),
        "transitions": [transition_json(item) for item in description.transitions],
    }


def point_json(point: PointView, *, with_metadata: bool = False) -> dict[str, Any]:
    """The JSON of one recovery point; the source's metadata only when asked for."""
    data: dict[str, Any] = {
        "id": point.id,
        "vault": point.vault,
        "resource": point.resource,
        "resource_type": point.resource_type,
        "job_id": point.job_id,
        "state": point.state.value,
        "tier": point.tier.value,
        "created_at": iso(point.created_at),
        "completed_at": iso(point.completed_at),
        "logical_size": point.logical_size,
        "stored_size": point.stored_size,
        "tags": dict(point.tags),
        "move_to_cold_at": iso(point.move_to_cold_at),
        "delete_at": iso(point.delete_at),
        "legal_hold": point.legal_hold,
        "verified_at": iso(point.verified_at),
        "verification_ok": _verdict(point.verification),
        "restore_tested_at": iso(point.restore_tested_at),
        "restore_test_ok": _verdict(point.restore_test),
    }
    if with_metadata:
        data["verification"] = dict(point.verification) if point.verification else None
        data["restore_test"] = dict(point.restore_test) if point.restore_test else None
        data["metadata"] = dict(point.metadata)
    return data


def _verdict(evidence: Mapping[str, Any] | None) -> bool | None:
    return None if evidence is None else bool(evidence.get("ok"))

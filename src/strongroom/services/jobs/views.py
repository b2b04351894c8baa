"""Read-only snapshots of recovery points and their JSON; a job with its transitions.

The CLI (``--output json``) and the API render recovery points through these functions,
so both show the same fields with the same names. Jobs have their one JSON shape in
:mod:`strongroom.engine.views` (``job_document``, ``description_document``).
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
    source_point_id: str | None = None
    """Set on a copy: the point it was copied from."""


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
        source_point_id=row.source_point_id,
    )


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 text, or None."""
    return value.isoformat() if value is not None else None


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
        "source_point_id": point.source_point_id,
    }
    if with_metadata:
        data["verification"] = dict(point.verification) if point.verification else None
        data["restore_test"] = dict(point.restore_test) if point.restore_test else None
        data["metadata"] = dict(point.metadata)
    return data


def _verdict(evidence: Mapping[str, Any] | None) -> bool | None:
    return None if evidence is None else bool(evidence.get("ok"))

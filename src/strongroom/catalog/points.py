"""Recovery points in the catalog: record, look up, list, and keep their evidence.

A recovery point's id is the id of its vault manifest: the vault is the truth about what
data exists, and the catalog can be rebuilt from the manifests. Every function takes an
open session.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from strongroom.catalog.models import RecoveryPoint, Resource, Vault
from strongroom.catalog.types import PointState, Tier
from strongroom.errors import ConflictError, NotFoundError


def record_recovery_point(
    session: Session,
    *,
    point_id: str,
    vault_id: int,
    resource_id: int,
    created_at: datetime,
    job_id: str | None = None,
    completed_at: datetime | None = None,
    logical_size: int = 0,
    stored_size: int = 0,
    tags: Mapping[str, str] | None = None,
    move_to_cold_at: datetime | None = None,
    delete_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    state: PointState = PointState.AVAILABLE,
    tier: Tier = Tier.WARM,
    source_point_id: str | None = None,
) -> RecoveryPoint:
    """Insert a recovery point (a copy names its ``source_point_id``); raises
    ConflictError (not retryable) if the id exists."""
    if session.get(RecoveryPoint, point_id) is not None:
        raise ConflictError(f"recovery point {point_id} is already recorded")
    point = RecoveryPoint(
        id=point_id,
        vault_id=vault_id,
        resource_id=resource_id,
        job_id=job_id,
        state=state,
        created_at=created_at,
        completed_at=completed_at,
        logical_size=logical_size,
        stored_size=stored_size,
        tags=dict(tags or {}),
        move_to_cold_at=move_to_cold_at,
        delete_at=delete_at,
        tier=tier,
        legal_hold=False,
        metadata_=dict(metadata or {}),
        source_point_id=source_point_id,
    )
    session.add(point)
    session.flush()
    return point


def get_recovery_point(session: Session, point_id: str) -> RecoveryPoint:
    """Return one recovery point; raises NotFoundError."""
    point = session.get(RecoveryPoint, point_id, populate_existing=True)
    if point is None:
        raise NotFoundError(f"no recovery point {point_id!r} in the catalog")
    return point


def list_recovery_points(
    session: Session,
    *,
    vault: str | None = None,
    resource: str | None = None,
    states: Collection[PointState] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    after: tuple[datetime, str] | None = None,
) -> list[RecoveryPoint]:
    """Return recovery points newest first, by vault and/or resource name, state and
    creation time (``since`` inclusive, ``until`` exclusive); ``after`` (the creation time
    and id of the last point of the previous page) starts after that point (keyset paging)."""
    statement = select(RecoveryPoint)
    if after is not None:
        created_at, point_id = after
        # The range on created_at alone lets the database seek its index.
        statement = statement.where(
            RecoveryPoint.created_at <= created_at,
            or_(RecoveryPoint.created_at < created_at, RecoveryPoint.id > point_id),
        )
    if vault is not None:
        statement = statement.join(Vault, RecoveryPoint.vault_id == Vault.id).where(
            Vault.name == vault
        )
    if resource is not None:
        statement = statement.join(Resource, RecoveryPoint.resource_id == Resource.id).where(
            Resource.name == resource
        )
    if states is not None:
        statement = statement.where(RecoveryPoint.state.in_(list(states)))
    if since is not None:
        statement = statement.where(RecoveryPoint.created_at >= since)
    if until is not None:
        statement = statement.where(RecoveryPoint.created_at < until)
    statement = statement.order_by(RecoveryPoint.created_at.desc(), RecoveryPoint.id)
    if limit is not None:
        statement = statement.limit(limit)
    # Each point names its vault and resource: load them in the same query, not one by one.
    statement = statement.options(
        joinedload(RecoveryPoint.vault), joinedload(RecoveryPoint.resource)
    )
    return list(session.scalars(statement))


def newest_points(session: Session, *, states: Collection[PointState]) -> dict[int, RecoveryPoint]:
    """The newest recovery point in ``states`` of every resource that has one, by resource
    id: one query (an index seek per resource), not one query per resource."""
    newest = (
        select(RecoveryPoint.id)
        .where(RecoveryPoint.resource_id == Resource.id, RecoveryPoint.state.in_(list(states)))
        .order_by(RecoveryPoint.created_at.desc(), RecoveryPoint.id)
        .limit(1)
        .correlate(Resource)
        .scalar_subquery()
    )
    statement = (
        select(RecoveryPoint)
        .where(RecoveryPoint.id.in_(select(newest).select_from(Resource)))
        .options(joinedload(RecoveryPoint.vault))
    )
    return {row.resource_id: row for row in session.scalars(statement)}


def list_due_for_cold(session: Session, *, now: datetime) -> list[RecoveryPoint]:
    """Return warm, available points whose move to the cold tier is due by ``now``."""
    statement = (
        select(RecoveryPoint)
        .where(
            RecoveryPoint.state == PointState.AVAILABLE,
            RecoveryPoint.tier == Tier.WARM,
            RecoveryPoint.move_to_cold_at <= now,
        )
        .order_by(RecoveryPoint.move_to_cold_at)
    )
    return list(session.scalars(statement))


def list_due_for_deletion(session: Session, *, now: datetime) -> list[RecoveryPoint]:
    """Return points past their ``delete_at`` that are not deleted and not on legal hold.

    Vault-lock retention is checked by the services layer before anything is deleted.
    """
    statement = (
        select(RecoveryPoint)
        .where(
            RecoveryPoint.state.in_([PointState.AVAILABLE, PointState.PARTIAL]),
            RecoveryPoint.delete_at <= now,
            RecoveryPoint.legal_hold.is_(False),
        )
        .order_by(RecoveryPoint.delete_at)
    )
    return list(session.scalars(statement))


def set_point_state(session: Session, point_id: str, state: PointState) -> RecoveryPoint:
    """Change a point's state (e.g. EXPIRED, DELETED)."""
    point = get_recovery_point(session, point_id)
    point.state = state
    session.flush()
    return point


def set_tier(session: Session, point_id: str, tier: Tier) -> RecoveryPoint:
    """Record that a point's data moved to another tier."""
    point = get_recovery_point(session, point_id)
    point.tier = tier
    session.flush()
    return point


def set_legal_hold(
    session: Session,
    point_id: str,
    *,
    on: bool,
    reason: str | None = None,
    by: str | None = None,
    at: datetime | None = None,
) -> RecoveryPoint:
    """Put a point on legal hold (with why, by whom, when) or release it (clears them)."""
    point = get_recovery_point(session, point_id)
    point.legal_hold = on
    point.legal_hold_reason = reason if on else None
    point.legal_hold_by = by if on else None
    point.legal_hold_at = at if on else None
    session.flush()
    return point


def set_cold_copy(
    session: Session, point_id: str, *, at: datetime, cold_point_id: str | None = None
) -> RecoveryPoint:
    """Record that a point moved to its vault's cold tier at ``at`` (tier COLD).

    ``cold_point_id`` is the id of its copy when the cold tier is a separate store.
    """
    point = get_recovery_point(session, point_id)
    point.tier = Tier.COLD
    point.cold_since = at
    point.cold_point_id = cold_point_id
    session.flush()
    return point


def list_on_legal_hold(session: Session, *, vault: str | None = None) -> list[RecoveryPoint]:
    """Return the points on legal hold, oldest hold first, optionally of one vault."""
    statement = select(RecoveryPoint).where(RecoveryPoint.legal_hold.is_(True))
    if vault is not None:
        statement = statement.join(Vault, RecoveryPoint.vault_id == Vault.id).where(
            Vault.name == vault
        )
    statement = statement.order_by(RecoveryPoint.legal_hold_at, RecoveryPoint.id)
    return list(session.scalars(statement))


def find_recovery_point(session: Session, point_id: str) -> RecoveryPoint:
    """Return the point with this id or unique id prefix (at least 6 characters).

    Raises NotFoundError when none matches, ConflictError (not retryable) when the prefix
    is ambiguous.
    """
    point = session.get(RecoveryPoint, point_id, populate_existing=True)
    if point is not None:
        return point
    if len(point_id) >= 6 and all(c in "0123456789abcdef" for c in point_id):
        statement = select(RecoveryPoint).where(RecoveryPoint.id.startswith(point_id)).limit(2)
        matches = list(session.scalars(statement))
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ConflictError(f"recovery point prefix {point_id!r} is ambiguous")
    raise NotFoundError(f"no recovery point {point_id!r} in the catalog")


def record_verification(
    session: Session, point_id: str, *, result: Mapping[str, Any], at: datetime
) -> RecoveryPoint:
    """Keep the result of the latest verification of a point, as evidence."""
    point = get_recovery_point(session, point_id)
    point.verification_result = dict(result)
    point.verified_at = at
    session.flush()
    return point


def record_restore_test(
    session: Session, point_id: str, *, result: Mapping[str, Any], at: datetime
) -> RecoveryPoint:
    """Keep the result of the latest restore test of a point, as evidence."""
    point = get_recovery_point(session, point_id)
    point.restore_test_result = dict(result)
    point.restore_tested_at = at
    session.flush()
    return point

"""Legal holds: keep a recovery point, whatever its lifecycle says, until the hold is lifted.

A held point is never deleted: the lifecycle runner skips it and ``delete_recovery_point``
refuses it (naming the hold). It may still move to the cold tier (as in AWS Backup, a
hold preserves the data, not its storage class): a separate-store move deletes the warm
copy only after the cold copy was read back and checked. Placing and lifting a hold are
recorded as events with who, when and why; the hold's reason, author and time are also
kept with the point itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strongroom.catalog import points as catalog_points
from strongroom.catalog.models import RecoveryPoint
from strongroom.catalog.types import PointState
from strongroom.errors import ConfigError
from strongroom.services.context import AppContext
from strongroom.services.retention import audit
from strongroom.services.vaults.service import VaultService


@dataclass(frozen=True, slots=True)
class Hold:
    """A recovery point on legal hold (or just released: ``held`` false)."""

    point_id: str
    vault: str
    resource: str
    state: str
    tier: str
    held: bool
    reason: str | None
    by: str | None
    at: datetime | None

    @classmethod
    def of(cls, point: RecoveryPoint) -> Hold:
        """Read a hold from a catalog recovery point."""
        return cls(
            point_id=point.id,
            vault=point.vault.name,
            resource=point.resource.name,
            state=point.state.value,
            tier=point.tier.value,
            held=point.legal_hold,
            reason=point.legal_hold_reason,
            by=point.legal_hold_by,
            at=point.legal_hold_at,
        )

    def to_json(self) -> dict[str, Any]:
        """The hold as plain JSON."""
        return {
            "point": self.point_id,
            "vault": self.vault,
            "resource": self.resource,
            "state": self.state,
            "tier": self.tier,
            "held": self.held,
            "reason": self.reason,
            "by": self.by,
            "since": self.at.isoformat() if self.at else None,
        }


class LegalHoldService:
    """``strongroom legal-hold add / remove / list`` on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def add(self, point_id: str, *, reason: str, actor: str) -> Hold:
        """Put recovery point ``point_id`` (id or unique prefix) on legal hold.

        Raises ConfigError without a reason, for a deleted point or one already held;
        NotFoundError for an unknown point.
        """
        if not reason.strip():
            raise ConfigError("a legal hold needs a reason (--reason TEXT); it is recorded")
        now = self.context.now()
        self._mirror(point_id, on=True)
        with self.context.catalog.session() as session:
            point = catalog_points.find_recovery_point(session, point_id)
            if point.state == PointState.DELETED:
                raise ConfigError(f"recovery point {point.id[:12]} is deleted: nothing to hold")
            if point.legal_hold:
                raise ConfigError(
                    f"recovery point {point.id[:12]} is already on legal hold since "
                    f"{point.legal_hold_at.isoformat() if point.legal_hold_at else '?'} "
                    f"({point.legal_hold_reason})",
                    hint="Lift it first to change the reason ('strongroom legal-hold remove').",
                )
            catalog_points.set_legal_hold(
                session, point.id, on=True, reason=reason.strip(), by=actor, at=now
            )
            audit.record(
                session,
                audit.LEGAL_HOLD_ADDED,
                point.id,
                at=now,
                actor=actor,
                details={"reason": reason.strip(), "vault": point.vault.name},
            )
            return Hold.of(point)

    def remove(self, point_id: str, *, actor: str, reason: str | None = None) -> Hold:
        """Lift the legal hold of ``point_id``; its lifecycle applies again from now.

        Raises ConfigError when the point is not held, NotFoundError when unknown.
        """
        now = self.context.now()
        self._mirror(point_id, on=False)
        with self.context.catalog.session() as session:
            point = catalog_points.find_recovery_point(session, point_id)
            if not point.legal_hold:
                raise ConfigError(f"recovery point {point.id[:12]} is not on legal hold")
            placed = {
                "placed_by": point.legal_hold_by,
                "placed_at": point.legal_hold_at.isoformat() if point.legal_hold_at else None,
                "placed_for": point.legal_hold_reason,
            }
            catalog_points.set_legal_hold(session, point.id, on=False)
            audit.record(
                session,
                audit.LEGAL_HOLD_REMOVED,
                point.id,
                at=now,
                actor=actor,
                details={"reason": reason, "vault": point.vault.name, **placed},
            )
            return Hold.of(point)

    def _mirror(self, point_id: str, *, on: bool) -> None:
        """On an S3 vault, put or lift the server's legal hold first: a hold the catalog
        records is then always one the server enforces too (a failure changes nothing)."""
        with self.context.catalog.session(readonly=True) as session:
            point = catalog_points.find_recovery_point(session, point_id)
            if point.state == PointState.DELETED or point.legal_hold == on:
                return  # refused below, with its message
            vault, full_id = point.vault.name, point.id
        others = [hold.point_id for hold in self.list(vault=vault) if hold.point_id != full_id]
        VaultService(self.context).hold_point(vault, full_id, on=on, others=others)

    def list(self, *, vault: str | None = None) -> list[Hold]:
        """Every point on legal hold, oldest hold first."""
        with self.context.catalog.session(readonly=True) as session:
            return [
                Hold.of(point) for point in catalog_points.list_on_legal_hold(session, vault=vault)
            ]

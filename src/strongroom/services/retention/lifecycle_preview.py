"""What the lifecycle will do with each recovery point, and why: ``strongroom lifecycle preview``.

For every point not yet deleted it says when it moves to the cold tier, when it will
really be deleted and what decides that date: the rule that made it (``delete_at``), the
vault lock's minimum retention, the cold tier's minimum storage time, a legal hold. The
deletion date is the latest of them (none while a legal hold lasts or without a
``delete_at``). It changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog import points as catalog_points
from strongroom.catalog.models import Job, RecoveryPoint, Vault
from strongroom.catalog.types import PointState, Tier
from strongroom.config.vaults import NoColdTier, VaultConfig
from strongroom.services.context import AppContext
from strongroom.services.retention.lock_state import LockState
from strongroom.services.vaults.registry import registered_config

_LIVE = (PointState.AVAILABLE, PointState.PARTIAL, PointState.EXPIRED)


@dataclass(frozen=True, slots=True)
class Reason:
    """One thing that sets a point's deletion date: ``kind`` is ``rule``, ``vault_lock``,
    ``cold_minimum``, ``legal_hold`` or ``max_retention`` (a warning: the lock's maximum is
    exceeded); ``until`` is the date it sets (None: indefinitely)."""

    kind: str
    until: datetime | None
    message: str

    def to_json(self) -> dict[str, Any]:
        """The reason as plain JSON."""
        return {
            "kind": self.kind,
            "until": self.until.isoformat() if self.until else None,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class PointLifecycle:
    """The lifecycle of one recovery point as of ``now``."""

    point_id: str
    vault: str
    resource: str
    rule: str | None
    state: str
    tier: str
    created_at: datetime
    cold_tier: str
    move_to_cold_at: datetime | None
    cold_since: datetime | None
    move: str
    delete_at: datetime | None
    deletes_at: datetime | None
    expiry: str
    reasons: list[Reason] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The preview of the point as plain JSON."""
        return {
            "point": self.point_id,
            "vault": self.vault,
            "resource": self.resource,
            "rule": self.rule,
            "state": self.state,
            "tier": self.tier,
            "created": self.created_at.isoformat(),
            "cold_tier": self.cold_tier,
            "move_to_cold_at": _iso(self.move_to_cold_at),
            "cold_since": _iso(self.cold_since),
            "move": self.move,
            "delete_at": _iso(self.delete_at),
            "deletes_at": _iso(self.deletes_at),
            "expiry": self.expiry,
            "kept_by": [reason.to_json() for reason in self.reasons],
        }


class LifecyclePreviewService:
    """``lifecycle preview``: what the lifecycle will do to each point, on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def preview(self, *, vault: str | None = None) -> list[PointLifecycle]:
        """Return the lifecycle of every point not deleted (of ``vault`` only, when given),
        oldest first."""
        context = self.context
        now = context.now()
        with context.catalog.session(readonly=True) as session:
            points = catalog_points.list_recovery_points(session, vault=vault, states=_LIVE)
            configs: dict[str, VaultConfig] = {}
            previews = []
            for point in reversed(points):
                name = point.vault.name
                if name not in configs:
                    configs[name] = registered_config(session, name)
                previews.append(_preview(session, point, configs[name], now))
            return previews

    def of_point(self, point_id: str) -> PointLifecycle | None:
        """Return the lifecycle of one point (full id), or None once it is deleted.

        Raises NotFoundError for an unknown point.
        """
        with self.context.catalog.session(readonly=True) as session:
            point = catalog_points.get_recovery_point(session, point_id)
            if point.state not in _LIVE:
                return None
            config = registered_config(session, point.vault.name)
            return _preview(session, point, config, self.context.now())

    def upcoming(self, *, vault: str, limit: int = 50) -> list[PointLifecycle]:
        """Return the lifecycle of the points of ``vault`` that move to the cold tier or
        are deleted next (at most ``limit`` of each, soonest first, together by date), and
        of those on legal hold.

        Reads through the (state, move_to_cold_at) and (state, delete_at) indexes, so a
        vault with 100k points costs what one with 100 does (the console's vault page).
        """
        context = self.context
        now = context.now()
        with context.catalog.session(readonly=True) as session:
            config = registered_config(session, vault)
            chosen: dict[str, RecoveryPoint] = {}
            for column in (RecoveryPoint.move_to_cold_at, RecoveryPoint.delete_at):
                statement = (
                    select(RecoveryPoint)
                    .join(Vault, RecoveryPoint.vault_id == Vault.id)
                    .where(
                        Vault.name == vault,
                        RecoveryPoint.state.in_(_LIVE),
                        column.is_not(None),
                    )
                    .order_by(column, RecoveryPoint.id)
                    .limit(limit)
                )
                if column is RecoveryPoint.move_to_cold_at:
                    statement = statement.where(RecoveryPoint.tier == Tier.WARM)
                chosen.update((point.id, point) for point in session.scalars(statement))
            for point in catalog_points.list_on_legal_hold(session, vault=vault):
                chosen[point.id] = point
            previews = [_preview(session, point, config, now) for point in chosen.values()]
        return sorted(previews, key=_next_change)


def _next_change(preview: PointLifecycle) -> tuple[datetime, str]:
    dates = [
        moment
        for moment in (
            preview.move_to_cold_at if preview.tier == Tier.WARM.value else None,
            preview.deletes_at,
        )
        if moment is not None
    ]
    return (min(dates) if dates else datetime.max.replace(tzinfo=UTC), preview.point_id)


def _preview(
    session: Session, point: RecoveryPoint, config: VaultConfig, now: datetime
) -> PointLifecycle:
    lock = LockState.of(point.vault)
    tier = config.cold_tier
    rule = _rule_name(session, point)
    reasons: list[Reason] = []
    if point.delete_at is not None:
        made_by = f"rule {rule}" if rule else "its lifecycle"
        reasons.append(
            Reason("rule", point.delete_at, f"{made_by}: delete on {_day(point.delete_at)}")
        )
    earliest = lock.earliest_deletion(point.created_at)
    if earliest is not None:
        reasons.append(
            Reason(
                "vault_lock",
                earliest,
                f"{lock.mode} vault lock, min retention {lock.min_retention_days} days: "
                f"not deletable before {_day(earliest)}",
            )
        )
    cold_start = point.cold_since or (
        max(point.move_to_cold_at, now)
        if point.move_to_cold_at and not isinstance(tier, NoColdTier)
        else None
    )
    minimum = tier.minimum_storage_days
    if cold_start is not None and minimum > 0:
        until = cold_start + timedelta(days=minimum)
        reasons.append(
            Reason(
                "cold_minimum",
                until,
                f"{tier.kind} cold tier keeps points at least {minimum} days: not deletable "
                f"before {_day(until)}",
            )
        )
    if point.legal_hold:
        reasons.append(
            Reason(
                "legal_hold",
                None,
                f"legal hold since {_day(point.legal_hold_at)} by {point.legal_hold_by}: "
                f"{point.legal_hold_reason}",
            )
        )
    if lock.locked and lock.max_retention_days is not None:
        latest = point.created_at + timedelta(days=lock.max_retention_days)
        if point.delete_at is None or point.delete_at > latest:
            reasons.append(
                Reason(
                    "max_retention",
                    latest,
                    f"warning: the vault lock's max retention is {lock.max_retention_days} days "
                    f"({_day(latest)}), but the point is kept longer",
                )
            )
    deletes_at, expiry = _expiry(point, reasons, now)
    return PointLifecycle(
        point_id=point.id,
        vault=point.vault.name,
        resource=point.resource.name,
        rule=rule,
        state=point.state.value,
        tier=point.tier.value,
        created_at=point.created_at,
        cold_tier=tier.kind,
        move_to_cold_at=point.move_to_cold_at,
        cold_since=point.cold_since,
        move=_move(point, tier.kind, now),
        delete_at=point.delete_at,
        deletes_at=deletes_at,
        expiry=expiry,
        reasons=reasons,
    )


def _expiry(
    point: RecoveryPoint, reasons: list[Reason], now: datetime
) -> tuple[datetime | None, str]:
    if point.legal_hold:
        return None, "never while the legal hold lasts"
    if point.delete_at is None:
        return None, "never (no delete_after_days): kept until deleted by hand"
    binding = [reason for reason in reasons if reason.kind != "max_retention"]
    when = max(reason.until for reason in binding if reason.until is not None)
    if when <= now:
        return when, "due now: the next lifecycle run deletes it"
    later = [reason.kind for reason in binding if reason.until == when and reason.kind != "rule"]
    because = f" (held past delete_at by the {later[0].replace('_', ' ')})" if later else ""
    return when, f"on {_day(when)}{because}"


def _move(point: RecoveryPoint, kind: str, now: datetime) -> str:
    if point.tier == Tier.COLD:
        return f"moved to the {kind} cold tier on {_day(point.cold_since)}"
    if point.move_to_cold_at is None:
        return "stays warm (no move_to_cold_after_days)"
    if kind == "none":
        return "stays warm: the vault has no cold tier"
    if point.move_to_cold_at <= now:
        return f"due now: moves to the {kind} cold tier at the next lifecycle run"
    return f"moves to the {kind} cold tier on {_day(point.move_to_cold_at)}"


def _rule_name(session: Session, point: RecoveryPoint) -> str | None:
    if point.job_id is None:
        return None
    job = session.get(Job, point.job_id)
    if job is None or job.rule is None:
        return None
    return f"{job.rule.name!r} of plan {job.rule.plan.name!r}"


def _day(when: datetime | None) -> str:
    return when.isoformat(timespec="seconds") if when else "?"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None

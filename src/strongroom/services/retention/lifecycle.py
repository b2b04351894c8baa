"""The lifecycle runner: delete expired recovery points, then move due ones to the cold tier.

:meth:`LifecycleService.run` reads what is due from the catalog (``delete_at`` / ``move_to_cold_at``
reached) and acts on each point in its own transactions, so one failure never stops the
others and a crash leaves every point in a state the next run resumes from:

* **Deletion** takes the one path of :mod:`strongroom.services.retention.deletion`: a point on
  legal hold, inside its vault lock's minimum retention or inside its cold tier's minimum
  storage time is kept (reported with the date it becomes deletable), never deleted.
  Deletions run first, so a point due for both is not copied to cold only to be deleted.
* **Moving to cold** depends on the vault's cold tier (:mod:`strongroom.services.retention.cold_tier`):
  ``same-store`` marks the point cold in the catalog; ``separate-store`` copies it into
  the cold vault, checks the copy, records it and deletes the warm manifest; ``none``
  moves nothing (apply refuses cold rules for such a vault; the point is reported).
  A legal hold does not stop a move.

Deleted data is reclaimed by the vault's garbage collection: ``gc=True`` runs it on every
vault (and cold vault) the run deleted from. ``dry_run`` reports what would happen and
changes nothing.

This lives in the services layer, not the engine, because it opens vaults through the
vault service; the daemon's scheduler calls it like any other service.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from strongroom.catalog import maintenance
from strongroom.catalog import points as catalog_points
from strongroom.catalog.models import RecoveryPoint
from strongroom.catalog.types import PointState, Tier
from strongroom.config.vaults import NoColdTier, SameStoreColdTier, VaultConfig
from strongroom.errors import StrongroomError
from strongroom.logs import get_logger
from strongroom.services.context import AppContext
from strongroom.services.retention import audit
from strongroom.services.retention.cold_tier import copy_point, open_cold_vault
from strongroom.services.retention.deletion import (
    PointRef,
    blockers,
    claim,
    erase_in,
    finish,
    open_point_vaults,
)
from strongroom.services.retention.policy import deletable_from
from strongroom.services.vaults.registry import registered_config
from strongroom.services.vaults.service import VaultService
from strongroom.storage.open import redact_url
from strongroom.vault import GcReport, Vault

_logger = get_logger(__name__)

ActionKind = Literal["delete", "move_to_cold"]
Outcome = Literal["deleted", "moved", "kept", "skipped", "failed", "would_delete", "would_move"]
LIFECYCLE_ACTOR = "lifecycle"
_DELETABLE = (PointState.AVAILABLE, PointState.PARTIAL, PointState.EXPIRED)


@dataclass(frozen=True, slots=True)
class LifecycleAction:
    """What the run did (or, in a dry run, would do) with one recovery point.

    ``until`` is, for a kept point, when it becomes deletable (None: a legal hold).
    """

    point_id: str
    vault: str
    resource: str
    action: ActionKind
    outcome: Outcome
    detail: str
    until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The action as plain JSON."""
        return {
            "point": self.point_id,
            "vault": self.vault,
            "resource": self.resource,
            "action": self.action,
            "outcome": self.outcome,
            "detail": self.detail,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass(slots=True)
class LifecycleReport:
    """Everything one lifecycle run did, point by point, and the garbage collections."""

    at: datetime
    dry_run: bool
    vault: str | None
    actions: list[LifecycleAction] = field(default_factory=list)
    gc: dict[str, GcReport] = field(default_factory=dict)
    gc_errors: dict[str, str] = field(default_factory=dict)

    def with_outcome(self, *outcomes: Outcome) -> list[LifecycleAction]:
        """The actions that ended in one of ``outcomes``."""
        return [action for action in self.actions if action.outcome in outcomes]

    @property
    def ok(self) -> bool:
        """Whether no action (and no garbage collection) failed."""
        return not self.with_outcome("failed") and not self.gc_errors

    def counts(self) -> dict[str, int]:
        """How many actions ended in each outcome."""
        counts: dict[str, int] = defaultdict(int)
        for action in self.actions:
            counts[action.outcome] += 1
        return dict(counts)

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON."""
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "vault": self.vault,
            "counts": self.counts(),
            "actions": [action.to_json() for action in self.actions],
            "gc": {
                name: {
                    "packs_deleted": report.packs_deleted,
                    "packs_repacked": report.packs_repacked,
                    "bytes_freed": report.bytes_freed,
                    "packs_too_young": report.packs_too_young,
                }
                for name, report in self.gc.items()
            },
            "gc_errors": self.gc_errors,
        }


class LifecycleService:
    """The lifecycle runner (``lifecycle run`` and the daemon), on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def run(
        self,
        *,
        vault: str | None = None,
        dry_run: bool = False,
        gc: bool = False,
        actor: str = LIFECYCLE_ACTOR,
    ) -> LifecycleReport:
        """Apply the lifecycle to every due point (of ``vault`` only, when given).

        Returns the report; failures of single points are in it (outcome ``failed``), not
        raised. Raises only what stops the whole run (the catalog cannot be reached).
        """
        context = self.context
        now = context.now()
        report = LifecycleReport(at=now, dry_run=dry_run, vault=vault)
        for vault_name, point_ids in _due_for_deletion(context, vault, now).items():
            try:
                report.actions += _delete_in_vault(
                    context, vault_name, point_ids, now=now, dry_run=dry_run, actor=actor
                )
            except StrongroomError as error:  # e.g. the vault's registration is unreadable
                report.actions += _vault_failed(vault_name, point_ids, "delete", error)
        report.actions += _held_and_due(context, vault, now)
        for vault_name, point_ids in _due_for_cold(context, vault, now).items():
            try:
                report.actions += _move_in_vault(
                    context, vault_name, point_ids, now=now, dry_run=dry_run, actor=actor
                )
            except StrongroomError as error:
                report.actions += _vault_failed(vault_name, point_ids, "move_to_cold", error)
        if gc and not dry_run:
            for vault_name in sorted({action.vault for action in report.with_outcome("deleted")}):
                _collect_garbage(context, vault_name, report)
        if not dry_run and vault is None:
            with context.catalog.session() as session:
                # The monitor watches this: a runner that stopped is an alert.
                maintenance.record_lifecycle_run(session, at=now)
        if not dry_run and report.actions:
            with context.catalog.session() as session:
                audit.record(
                    session,
                    audit.LIFECYCLE_RUN,
                    vault or "*",
                    at=now,
                    actor=actor,
                    details={"counts": report.counts(), "gc": sorted(report.gc)},
                )
        return report


# -- what is due ------------------------------------------------------------------------


def _group(points: Iterable[RecoveryPoint], vault: str | None) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for point in points:
        if vault is None or point.vault.name == vault:
            grouped[point.vault.name].append(point.id)
    return dict(grouped)


def _due_for_deletion(
    context: AppContext, vault: str | None, now: datetime
) -> dict[str, list[str]]:
    with context.catalog.session(readonly=True) as session:
        due = catalog_points.list_due_for_deletion(session, now=now)
        # Points a failed deletion left EXPIRED are taken up again (the policy is re-checked).
        stuck = catalog_points.list_recovery_points(
            session, vault=vault, states=[PointState.EXPIRED]
        )
        return _group([*due, *(p for p in stuck if p.id not in {d.id for d in due})], vault)


def _due_for_cold(context: AppContext, vault: str | None, now: datetime) -> dict[str, list[str]]:
    with context.catalog.session(readonly=True) as session:
        return _group(catalog_points.list_due_for_cold(session, now=now), vault)


def _held_and_due(context: AppContext, vault: str | None, now: datetime) -> list[LifecycleAction]:
    """Report the held points whose deletion is due (the catalog never lists them as due)."""
    with context.catalog.session(readonly=True) as session:
        return [
            LifecycleAction(
                point.id,
                point.vault.name,
                point.resource.name,
                "delete",
                "kept",
                _held_because(session, point, now),
            )
            for point in catalog_points.list_on_legal_hold(session, vault=vault)
            # EXPIRED ones are reported by the deletion pass, which takes them up again.
            if point.state in (PointState.AVAILABLE, PointState.PARTIAL)
            and point.delete_at is not None
            and point.delete_at <= now
        ]


def _held_because(session: Session, point: RecoveryPoint, now: datetime) -> str:
    try:
        return "; ".join(keep.message for keep in blockers(session, point, now))
    except StrongroomError:  # the vault's registration is unreadable; the hold is what counts
        return f"it is on legal hold: {point.legal_hold_reason}"


# -- deleting ---------------------------------------------------------------------------


def _delete_in_vault(
    context: AppContext,
    vault_name: str,
    point_ids: list[str],
    *,
    now: datetime,
    dry_run: bool,
    actor: str,
) -> list[LifecycleAction]:
    actions: list[LifecycleAction] = []
    claimed: list[PointRef] = []
    for point_id in point_ids:
        with context.catalog.session(readonly=dry_run) as session:
            point = catalog_points.get_recovery_point(session, point_id)
            if point.state not in _DELETABLE or point.vault.name != vault_name:
                continue  # someone else acted on it since the listing
            keeps = blockers(session, point, now)
            resource = point.resource.name
            if keeps:
                actions.append(
                    LifecycleAction(
                        point_id,
                        vault_name,
                        resource,
                        "delete",
                        "kept",
                        "; ".join(keep.message for keep in keeps),
                        deletable_from(keeps),
                    )
                )
                continue
            if dry_run:
                actions.append(
                    LifecycleAction(
                        point_id, vault_name, resource, "delete", "would_delete", _expiry(point)
                    )
                )
                continue
            claimed.append(claim(session, point))
    if not claimed:
        return actions
    try:
        with open_point_vaults(
            context, vault_name, cold=any(ref.cold_point_id for ref in claimed)
        ) as (warm, cold):
            for ref in claimed:
                actions.append(_erase_and_finish(context, warm, cold, ref, now=now, actor=actor))
    except StrongroomError as error:
        done = {action.point_id for action in actions}
        actions += [
            _failed(ref, "delete", f"the vault could not be opened: {error}")
            for ref in claimed
            if ref.point_id not in done
        ]
    return actions


def _erase_and_finish(
    context: AppContext,
    warm: Vault,
    cold: Vault | None,
    ref: PointRef,
    *,
    now: datetime,
    actor: str,
) -> LifecycleAction:
    try:
        erase_in(warm, cold, ref)
    except StrongroomError as error:
        return _failed(ref, "delete", f"{error} (it stays EXPIRED; the next run retries)")
    with context.catalog.session() as session:
        finish(session, ref, at=now, actor=actor, reason="lifecycle: delete_after_days reached")
    return LifecycleAction(ref.point_id, ref.vault, ref.resource, "delete", "deleted", "deleted")


def _vault_failed(
    vault_name: str, point_ids: list[str], action: ActionKind, error: StrongroomError
) -> list[LifecycleAction]:
    return [
        _failed(PointRef(point_id, vault_name, "?", None), action, str(error))
        for point_id in point_ids
    ]


def _failed(ref: PointRef, action: ActionKind, detail: str) -> LifecycleAction:
    _logger.warning("lifecycle %s of %s failed: %s", action, ref.point_id, detail)
    return LifecycleAction(ref.point_id, ref.vault, ref.resource, action, "failed", detail)


def _expiry(point: RecoveryPoint) -> str:
    if point.state == PointState.EXPIRED:
        return "its deletion was begun and did not finish"
    return f"delete_at {point.delete_at.isoformat() if point.delete_at else '?'} reached"


# -- moving to cold ---------------------------------------------------------------------


def _move_in_vault(
    context: AppContext,
    vault_name: str,
    point_ids: list[str],
    *,
    now: datetime,
    dry_run: bool,
    actor: str,
) -> list[LifecycleAction]:
    with context.catalog.session(readonly=True) as session:
        config = registered_config(session, vault_name)
        resources = {
            point_id: catalog_points.get_recovery_point(session, point_id).resource.name
            for point_id in point_ids
        }
    tier = config.cold_tier
    refs = [PointRef(point_id, vault_name, resources[point_id], None) for point_id in point_ids]
    if isinstance(tier, NoColdTier):
        return [
            LifecycleAction(
                ref.point_id,
                vault_name,
                ref.resource,
                "move_to_cold",
                "skipped",
                f"vault {vault_name!r} has no cold tier (cold_tier.kind: none); the point "
                "stays warm",
            )
            for ref in refs
        ]
    if dry_run:
        return [
            LifecycleAction(
                ref.point_id,
                vault_name,
                ref.resource,
                "move_to_cold",
                "would_move",
                f"to the {tier.kind} cold tier",
            )
            for ref in refs
        ]
    if isinstance(tier, SameStoreColdTier):
        return [_mark_cold(context, ref, now=now, actor=actor, kind=tier.kind) for ref in refs]
    try:
        return _copy_to_cold(context, config, refs, now=now, actor=actor)
    except StrongroomError as error:
        return [_failed(ref, "move_to_cold", f"the cold tier failed: {error}") for ref in refs]


def _mark_cold(
    context: AppContext,
    ref: PointRef,
    *,
    now: datetime,
    actor: str,
    kind: str,
    cold_point_id: str | None = None,
    cold_url: str | None = None,
) -> LifecycleAction:
    with context.catalog.session() as session:
        point = catalog_points.get_recovery_point(session, ref.point_id)
        if point.state != PointState.AVAILABLE or point.tier != Tier.WARM:
            return LifecycleAction(
                ref.point_id,
                ref.vault,
                ref.resource,
                "move_to_cold",
                "skipped",
                f"it became {point.state.value}/{point.tier.value} during the run",
            )
        catalog_points.set_cold_copy(session, ref.point_id, at=now, cold_point_id=cold_point_id)
        audit.record(
            session,
            audit.POINT_MOVED_TO_COLD,
            ref.point_id,
            at=now,
            actor=actor,
            details={
                "vault": ref.vault,
                "tier": kind,
                "cold_point_id": cold_point_id,
                "cold_url": cold_url,
            },
        )
    where = f" as {cold_point_id[:12]} in {cold_url}" if cold_point_id else ""
    return LifecycleAction(
        ref.point_id, ref.vault, ref.resource, "move_to_cold", "moved", f"{kind}{where}"
    )


def _copy_to_cold(
    context: AppContext, config: VaultConfig, refs: list[PointRef], *, now: datetime, actor: str
) -> list[LifecycleAction]:
    """Copy each point into the separate-store cold vault, record it, then drop the warm
    manifest (only after the catalog names the checked copy)."""
    actions: list[LifecycleAction] = []
    cold_url = redact_url(getattr(config.cold_tier, "url", ""))
    with (
        VaultService(context).open(refs[0].vault) as warm,
        open_cold_vault(context, config, create=True) as cold,
    ):
        for ref in refs:
            try:
                copy_id = copy_point(warm, cold, ref.point_id)
            except StrongroomError as error:
                actions.append(_failed(ref, "move_to_cold", f"copy failed: {error}"))
                continue
            action = _mark_cold(
                context,
                ref,
                now=now,
                actor=actor,
                kind="separate-store",
                cold_point_id=copy_id,
                cold_url=cold_url,
            )
            if action.outcome == "moved":
                warm.delete_point(ref.point_id)
            else:
                cold.delete_point(copy_id)
            actions.append(action)
    return actions


# -- garbage collection -----------------------------------------------------------------


def _collect_garbage(context: AppContext, vault_name: str, report: LifecycleReport) -> None:
    try:
        with open_point_vaults(context, vault_name, cold=True) as (warm, cold):
            report.gc[vault_name] = warm.gc()
            if cold is not None:
                report.gc[f"{vault_name} (cold tier)"] = cold.gc()
        with context.catalog.session() as session:
            maintenance.record_gc(session, vault_name, at=context.now())
    except StrongroomError as error:
        _logger.warning("gc of vault %s after the lifecycle run failed: %s", vault_name, error)
        report.gc_errors[vault_name] = str(error)

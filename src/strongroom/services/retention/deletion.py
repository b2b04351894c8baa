"""Deleting a recovery point: the one path every deletion takes (lifecycle and on request).

A deletion runs in three steps so that a crash never leaves the catalog naming data that
is gone without saying so:

1. in one transaction: check the policy (legal hold, vault lock minimum retention, cold
   tier minimum storage; :mod:`strongroom.services.retention.policy`) and mark the point EXPIRED;
2. delete its manifest from the vault (and its copy from a separate-store cold tier);
   the data itself goes at the vault's next ``gc``;
3. mark it DELETED and record ``recovery_point.deleted`` (who, why, when).

A point left EXPIRED by a failure in step 2 is picked up again by the next lifecycle run
(or another ``delete_recovery_point``), after the policy is checked again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from strongroom.catalog import points as catalog_points
from strongroom.catalog.models import RecoveryPoint
from strongroom.catalog.types import PointState
from strongroom.config.vaults import SeparateStoreColdTier
from strongroom.errors import ConfigError, NotFoundError, PolicyError
from strongroom.logs import get_logger
from strongroom.services.context import AppContext
from strongroom.services.retention import audit
from strongroom.services.retention.cold_tier import open_cold_vault
from strongroom.services.retention.lock_state import LockState
from strongroom.services.retention.policy import Keep, check_deletable, deletion_blockers
from strongroom.services.vaults.registry import registered_config
from strongroom.services.vaults.service import VaultService
from strongroom.vault import Vault

_logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PointRef:
    """Where a point's data lives, read from the catalog before its manifest is deleted."""

    point_id: str
    vault: str
    resource: str
    cold_point_id: str | None


@dataclass(frozen=True, slots=True)
class DeletedPoint:
    """A recovery point that was deleted: which, from where, when, by whom and why."""

    point_id: str
    vault: str
    resource: str
    at: datetime
    actor: str
    reason: str


def blockers(session: Session, point: RecoveryPoint, now: datetime) -> list[Keep]:
    """Return what keeps ``point`` from being deleted at ``now`` (reads its vault's lock
    and cold tier from the catalog)."""
    lock = LockState.of(point.vault)
    cold_minimum = registered_config(session, point.vault.name).cold_tier.minimum_storage_days
    return deletion_blockers(point, lock, cold_minimum_days=cold_minimum, now=now)


def claim(session: Session, point: RecoveryPoint) -> PointRef:
    """Mark ``point`` EXPIRED (its deletion has begun) and return where its data is.

    The caller has checked :func:`blockers` in the same transaction.
    """
    point.state = PointState.EXPIRED
    session.flush()
    return PointRef(point.id, point.vault.name, point.resource.name, point.cold_point_id)


@contextmanager
def open_point_vaults(
    context: AppContext, vault_name: str, *, cold: bool
) -> Iterator[tuple[Vault, Vault | None]]:
    """Open vault ``vault_name`` and, when ``cold`` and it has one, its separate-store cold
    tier (None when it has none or the cold store holds no vault)."""
    service = VaultService(context)
    config = service.config(vault_name)
    with ExitStack() as stack:
        warm = stack.enter_context(service.open(vault_name))
        cold_vault: Vault | None = None
        if cold and isinstance(config.cold_tier, SeparateStoreColdTier):
            try:
                cold_vault = stack.enter_context(open_cold_vault(context, config, create=False))
            except NotFoundError:
                _logger.warning("the cold tier of vault %s holds no vault", vault_name)
        yield warm, cold_vault


def erase_in(warm: Vault, cold: Vault | None, ref: PointRef) -> None:
    """Delete the point's manifest from ``warm`` and its copy from ``cold``.

    Deleting a manifest that is already gone succeeds, so this can be repeated.
    """
    warm.delete_point(ref.point_id)
    if ref.cold_point_id is None:
        return
    if cold is None:
        _logger.warning(
            "recovery point %s: its cold copy %s has no cold vault to be deleted from",
            ref.point_id,
            ref.cold_point_id,
        )
        return
    cold.delete_point(ref.cold_point_id)


def erase(context: AppContext, ref: PointRef) -> None:
    """Open the point's vaults and :func:`erase_in` them."""
    with open_point_vaults(context, ref.vault, cold=ref.cold_point_id is not None) as (
        warm,
        cold,
    ):
        erase_in(warm, cold, ref)


def finish(
    session: Session, ref: PointRef, *, at: datetime, actor: str, reason: str
) -> DeletedPoint:
    """Mark the point DELETED and record the event."""
    catalog_points.set_point_state(session, ref.point_id, PointState.DELETED)
    audit.record(
        session,
        audit.POINT_DELETED,
        ref.point_id,
        at=at,
        actor=actor,
        details={
            "vault": ref.vault,
            "resource": ref.resource,
            "reason": reason,
            "cold_point_id": ref.cold_point_id,
        },
    )
    return DeletedPoint(ref.point_id, ref.vault, ref.resource, at, actor, reason)


def delete_recovery_point(
    context: AppContext, point_id: str, *, actor: str, reason: str = "deleted on request"
) -> DeletedPoint:
    """Delete recovery point ``point_id`` (full id or unique prefix) now, if policy allows.

    Raises NotFoundError for an unknown point, ConfigError for one already deleted, and
    PolicyError — naming every reason and the date it becomes deletable — while a legal
    hold, the vault lock's minimum retention or the cold tier's minimum storage keeps it;
    the refused attempt is recorded as ``recovery_point.delete_refused``.
    """
    now = context.now()
    refused: PolicyError | None = None
    with context.catalog.session() as session:
        point = catalog_points.find_recovery_point(session, point_id)
        if point.state == PointState.DELETED:
            raise ConfigError(f"recovery point {point.id[:12]} is already deleted")
        lock = LockState.of(point.vault)
        cold_minimum = registered_config(session, point.vault.name).cold_tier.minimum_storage_days
        try:
            check_deletable(point, lock, cold_minimum_days=cold_minimum, now=now)
        except PolicyError as error:
            refused = error
            full_id = point.id
        else:
            ref = claim(session, point)
    if refused is not None:
        with context.catalog.session() as session:
            audit.record(
                session,
                audit.POINT_DELETE_REFUSED,
                full_id,
                at=now,
                actor=actor,
                details={"reason": reason, "refused_because": refused.message},
            )
        raise refused
    erase(context, ref)
    with context.catalog.session() as session:
        return finish(session, ref, at=now, actor=actor, reason=reason)

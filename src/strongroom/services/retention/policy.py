"""Retention policy: what keeps a recovery point from being deleted, and which plans a
vault refuses.

Two kinds of check live here, used wherever the engine acts:

* :func:`deletion_blockers` / :func:`check_deletable` — before any deletion (lifecycle
  runner, ``delete_recovery_point``): a legal hold, a vault lock's minimum retention, a
  cold tier's minimum storage time. Each names the date the point becomes deletable.
* :func:`check_plan_policy` — at apply time, before a plan is committed: a rule whose
  lifecycle breaks the lock of its vault (as the catalog records it, so a lock set with
  ``strongroom vault lock`` counts too) or asks a cold tier for what it cannot do. It
  reuses the configuration checks of :mod:`strongroom.config.checks`, fed with the locks
  that will hold once the plan is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog.models import RecoveryPoint
from strongroom.catalog.models import Vault as VaultRow
from strongroom.catalog.types import Tier
from strongroom.config.checks import check_references
from strongroom.config.issues import Finding
from strongroom.config.plans import PlanConfig
from strongroom.config.types import Location
from strongroom.config.vaults import SameStoreColdTier, VaultConfig
from strongroom.errors import PolicyError
from strongroom.services.retention.lock_state import LockState

KeepKind = Literal["legal_hold", "vault_lock", "cold_minimum"]

POLICY_CODES: Final = frozenset({"unknown_vault", "no_cold_tier", "cold_minimum", "vault_lock"})
"""The codes of ``config.checks`` findings that are retention policy (others are not ours)."""
COLD_TIER_UNSUPPORTED: Final = "cold_tier_unsupported"


@dataclass(frozen=True, slots=True)
class Keep:
    """One thing that keeps a recovery point from being deleted now.

    ``until`` is when it stops doing so; None for a legal hold (until someone removes it).
    """

    kind: KeepKind
    until: datetime | None
    message: str


def deletion_blockers(
    point: RecoveryPoint, lock: LockState, *, cold_minimum_days: int, now: datetime
) -> list[Keep]:
    """Return what keeps ``point`` from being deleted at ``now`` (empty: it may go).

    Given the point's vault lock and the minimum storage days of its vault's cold tier.
    """
    keeps: list[Keep] = []
    if point.legal_hold:
        since = _day(point.legal_hold_at) if point.legal_hold_at else "an unknown time"
        keeps.append(
            Keep(
                "legal_hold",
                None,
                f"it is on legal hold since {since} (by {point.legal_hold_by or 'unknown'}): "
                f"{point.legal_hold_reason or 'no reason recorded'}",
            )
        )
    earliest = lock.earliest_deletion(point.created_at)
    if earliest is not None and now < earliest:
        keeps.append(
            Keep(
                "vault_lock",
                earliest,
                f"vault {lock.vault!r} has a {lock.mode} lock with min_retention_days "
                f"{lock.min_retention_days}: created {_day(point.created_at)}, it may be "
                f"deleted from {_day(earliest)}",
            )
        )
    if point.tier == Tier.COLD and point.cold_since is not None and cold_minimum_days > 0:
        cold_until = point.cold_since + timedelta(days=cold_minimum_days)
        if now < cold_until:
            keeps.append(
                Keep(
                    "cold_minimum",
                    cold_until,
                    f"it is in the cold tier of vault {lock.vault!r} since "
                    f"{_day(point.cold_since)}, which keeps points at least "
                    f"{cold_minimum_days} days: it may be deleted from {_day(cold_until)}",
                )
            )
    return keeps


def deletable_from(keeps: list[Keep]) -> datetime | None:
    """When every keep has ended; None when one lasts until removed (a legal hold)."""
    if any(keep.until is None for keep in keeps):
        return None
    return max((keep.until for keep in keeps if keep.until is not None), default=None)


def check_deletable(
    point: RecoveryPoint, lock: LockState, *, cold_minimum_days: int, now: datetime
) -> None:
    """Raise PolicyError, naming every reason and the date it becomes deletable, when
    ``point`` may not be deleted at ``now``."""
    keeps = deletion_blockers(point, lock, cold_minimum_days=cold_minimum_days, now=now)
    if not keeps:
        return
    when = deletable_from(keeps)
    if when is None:
        hint = "Remove the legal hold first ('strongroom legal-hold remove POINT')."
    elif any(keep.kind == "vault_lock" for keep in keeps) and lock.mode == "governance":
        hint = (
            f"It becomes deletable on {_day(when)}; before that only lifting the governance "
            "lock ('strongroom vault unlock VAULT --privileged --reason TEXT') allows it."
        )
    else:
        hint = f"It becomes deletable on {_day(when)}."
    raise PolicyError(
        f"recovery point {point.id[:12]} cannot be deleted now: "
        + "; ".join(keep.message for keep in keeps),
        hint=hint,
    )


def stored_lock(session: Session, vault_name: str) -> LockState | None:
    """The lock the catalog records for ``vault_name``; None if the vault is not registered."""
    row = session.scalar(select(VaultRow).where(VaultRow.name == vault_name))
    return None if row is None else LockState.of(row)


def _binding_locks(
    stored: LockState | None, config: VaultConfig, now: datetime
) -> list[tuple[LockState, bool]]:
    """The locks a plan must satisfy once applied, each with whether it is the catalog's.

    A declared lock will hold. The stored lock keeps holding too unless it may be changed
    without privilege (an unlocked vault, a compliance lock in its grace period) and the
    configuration declares its replacement; it is never dropped by a configuration that
    says nothing about locks.
    """
    locks: list[tuple[LockState, bool]] = []
    if config.lock is not None:
        declared = LockState(
            vault="",
            mode=config.lock.mode,
            min_retention_days=config.lock.min_retention_days,
            max_retention_days=config.lock.max_retention_days,
        )
        locks.append((declared, False))
    if stored is not None and stored.locked:
        replaceable = config.lock is not None and stored.in_grace(now)
        if not replaceable and not stored.same_rules(config.lock):
            locks.append((stored, True))
    return locks


def check_plan_policy(
    session: Session,
    plan: PlanConfig,
    vaults: Mapping[str, VaultConfig],
    *,
    plan_name: str,
    now: datetime,
) -> list[Finding]:
    """Return the retention problems of ``plan`` (named ``plan_name``) against ``vaults``.

    Given the declared vaults and the catalog (for locks set outside the configuration),
    it reports each rule or copy action whose lifecycle deletes sooner than a vault lock's
    ``min_retention_days`` or later than its ``max_retention_days`` (or never), moves
    points into a vault without a cold tier, leaves fewer days in a cold tier than its
    minimum storage time, or asks a same-store cold tier of an S3 vault for a storage class
    (only a separate-store tier writes points in one).
    Each finding names the plan, the rule and the numbers; an empty list means the plan
    may be applied. Locations start at ``plans.<plan_name>``.
    """
    binding = {
        name: _binding_locks(stored_lock(session, name), config, now)
        for name, config in vaults.items()
    }
    findings: list[Finding] = []
    seen: set[tuple[Location, str]] = set()
    for lock_round in range(max((len(locks) for locks in binding.values()), default=0) or 1):
        effective: dict[str, VaultConfig | None] = {}
        from_catalog: set[str] = set()
        for name, config in vaults.items():
            locks = binding[name]
            lock, catalog_lock = locks[lock_round] if lock_round < len(locks) else (None, False)
            if catalog_lock:
                from_catalog.add(name)
            effective[name] = config.model_copy(update={"lock": lock.as_config() if lock else None})
        for finding in check_references(effective, {}, {plan_name: plan}):
            key = (finding.location, finding.message)
            if finding.code in POLICY_CODES and finding.severity == "error" and key not in seen:
                seen.add(key)
                findings.append(_name_the_lock(finding, from_catalog))
    findings += _unsupported_cold_tiers(plan, plan_name, vaults)
    return findings


def _name_the_lock(finding: Finding, from_catalog: set[str]) -> Finding:
    if finding.code != "vault_lock" or not any(
        f"vault {name!r} is locked" in finding.message for name in from_catalog
    ):
        return finding
    return Finding(
        finding.location,
        finding.code,
        finding.message + " (the lock recorded in the catalog, set with 'strongroom vault lock')",
        finding.severity,
    )


def _unsupported_cold_tiers(
    plan: PlanConfig, plan_name: str, vaults: Mapping[str, VaultConfig]
) -> list[Finding]:
    findings: list[Finding] = []
    for index, rule in enumerate(plan.rules):
        targets: list[tuple[Location, str, int | None]] = [
            (
                ("plans", plan_name, "rules", index),
                rule.target_vault,
                rule.lifecycle.move_to_cold_after_days,
            )
        ]
        targets += [
            (
                ("plans", plan_name, "rules", index, "copy_actions", copy_index),
                copy.destination_vault,
                copy.lifecycle.move_to_cold_after_days,
            )
            for copy_index, copy in enumerate(rule.copy_actions)
        ]
        for where, vault_name, cold_days in targets:
            config = vaults.get(vault_name)
            if cold_days is None or config is None:
                continue
            tier = config.cold_tier
            if (
                isinstance(tier, SameStoreColdTier)
                and urlsplit(config.url).scheme == "s3"
                and tier.storage_class is not None
            ):
                findings.append(
                    Finding(
                        (*where, "lifecycle", "move_to_cold_after_days"),
                        COLD_TIER_UNSUPPORTED,
                        f"rule {rule.name!r} of plan {plan_name!r} moves recovery points to "
                        f"the same-store cold tier of vault {vault_name!r} after {cold_days} "
                        f"days in storage class {tier.storage_class}, but a same-store move "
                        "only marks the point cold and writes nothing in that class; use a "
                        "separate-store cold tier (another bucket or prefix) for a storage class",
                    )
                )
    return findings


def _day(when: datetime) -> str:
    return when.isoformat(timespec="seconds")

"""Vault lock: set, change, lift and inspect a vault's retention lock, with an audit trail.

The rules (AWS Backup Vault Lock's):

* An unlocked vault can be locked by anyone who can run strongroom.
* A **compliance** lock can be changed or removed during its grace period
  (``changeable_for_days`` from when it was set); after that it is immutable: every
  attempt is refused (``PolicyError``), ``--privileged`` or not, and the refusal is
  recorded.
* A **governance** lock can be changed or removed only by a privileged action: the
  ``privileged`` flag plus a reason, both recorded. Without them the attempt is refused
  and recorded.
* Re-stating the lock a vault already has changes nothing (and restarts no grace period).

The lock is stored in the catalog's ``vaults`` row, which every deletion reads.
Configuration files may declare a lock too; :func:`register_vault_with_lock` applies a
declared lock under the same rules (apply must call it instead of ``register_vault``) and
:func:`check_declared_locks` reports, before anything is written, the declared changes the
rules refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog import events as catalog_events
from strongroom.catalog.models import Rule
from strongroom.catalog.models import Vault as VaultRow
from strongroom.catalog.resources import get_vault
from strongroom.config.issues import Finding
from strongroom.config.vaults import VaultConfig, VaultLock
from strongroom.errors import ConfigError, NotFoundError, PolicyError
from strongroom.services.context import AppContext
from strongroom.services.retention import audit
from strongroom.services.retention.lock_state import LockState
from strongroom.services.vaults.registry import register_vault
from strongroom.services.vaults.store_lock import is_s3, prove_store_enforcement

Action = Literal["set", "changed", "removed", "unchanged"]


@dataclass(frozen=True, slots=True)
class LockChange:
    """What a lock command did: the action, the lock before and after, and the rules of
    plans already targeting the vault that the new lock disagrees with (``warnings``)."""

    vault: str
    action: Action
    before: LockState
    after: LockState
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LockEvent:
    """One recorded lock event (set, changed, removed, or a refused attempt)."""

    at: datetime
    type: str
    actor: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LockStatus:
    """A vault's lock now, in words too, and its recorded history (oldest first)."""

    state: LockState
    summary: str
    history: list[LockEvent] = field(default_factory=list)


def parse_lock(
    mode: str,
    min_retention_days: int | None,
    max_retention_days: int | None,
    changeable_for_days: int | None,
) -> VaultLock:
    """Validate lock settings given on a command line with the configuration's own model."""
    try:
        return VaultLock.model_validate(
            {
                "mode": mode,
                "min_retention_days": min_retention_days,
                "max_retention_days": max_retention_days,
                "changeable_for_days": changeable_for_days,
            }
        )
    except ValidationError as error:
        message = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'lock'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid vault lock: {message.replace('Value error, ', '')}") from None


def refusal(
    current: LockState,
    new: VaultLock | None,
    *,
    now: datetime,
    privileged: bool,
    reason: str | None,
) -> str | None:
    """Return why the rules refuse replacing ``current`` by ``new`` (None: removing), or
    None when they allow it. Raises ConfigError for a request that makes no sense (lifting
    a lock that does not exist; ``privileged`` without a reason)."""
    if privileged and not (reason and reason.strip()):
        raise ConfigError("a privileged action needs a reason (--reason TEXT); it is recorded")
    if not current.locked:
        if new is None:
            raise ConfigError(f"vault {current.vault!r} is not locked")
        return None
    if current.same_rules(new):
        return None
    what = "change" if new is not None else "remove"
    if current.mode == "compliance":
        if current.immutable(now):
            since = current.changeable_until.isoformat() if current.changeable_until else "?"
            return (
                f"vault {current.vault!r} has a compliance-mode lock that became immutable "
                f"on {since}: nobody can {what} it, --privileged or not"
            )
        return None
    if not privileged:
        return (
            f"vault {current.vault!r} has a governance-mode lock: to {what} it is a "
            "privileged action (--privileged with --reason TEXT, both recorded)"
        )
    return None


def _after(current: LockState, new: VaultLock | None, now: datetime) -> LockState:
    if new is None:
        return LockState(vault=current.vault)
    if current.same_rules(new):
        return current
    until = (
        now + timedelta(days=new.changeable_for_days)
        if new.mode == "compliance" and new.changeable_for_days is not None
        else None
    )
    return LockState(
        vault=current.vault,
        mode=new.mode,
        min_retention_days=new.min_retention_days,
        max_retention_days=new.max_retention_days,
        changeable_until=until,
    )


def _store(row: VaultRow, state: LockState, now: datetime) -> None:
    row.lock_mode = state.mode
    row.lock_min_retention_days = state.min_retention_days
    row.lock_max_retention_days = state.max_retention_days
    row.lock_changeable_until = state.changeable_until
    row.updated_at = now


def _action(before: LockState, after: LockState) -> Action:
    if before == after:
        return "unchanged"
    if not before.locked:
        return "set"
    return "removed" if not after.locked else "changed"


_EVENT_OF: dict[Action, str] = {
    "set": audit.LOCK_SET,
    "changed": audit.LOCK_CHANGED,
    "removed": audit.LOCK_REMOVED,
}


def _apply(
    session: Session,
    row: VaultRow,
    new: VaultLock | None,
    *,
    now: datetime,
    actor: str,
    privileged: bool,
    reason: str | None,
) -> LockChange:
    """Store the change the rules allowed, with its event; return what was done."""
    before = LockState.of(row)
    after = _after(before, new, now)
    action = _action(before, after)
    warnings = tuple(conflicting_rules(session, row, after)) if after.locked else ()
    if action in {"set", "changed"} and is_s3(row.url):
        # The pre-flight: an S3 vault is locked only on a server proven to enforce it.
        prove_store_enforcement(VaultConfig.model_validate(row.settings))
    if action != "unchanged":
        _store(row, after, now)
        audit.record(
            session,
            _EVENT_OF[action],
            row.name,
            at=now,
            actor=actor,
            details={
                "privileged": privileged,
                "reason": reason,
                "before": before.to_json(),
                "after": after.to_json(),
            },
        )
    return LockChange(row.name, action, before, after, warnings)


def conflicting_rules(session: Session, row: VaultRow, lock: LockState) -> list[str]:
    """Say which rules writing into the vault have a retention the lock disagrees with.

    Their points are kept at least the minimum retention anyway (every deletion checks the
    lock); the next apply refuses them until their lifecycle fits.
    """
    problems: list[str] = []
    rules = session.scalars(select(Rule).where(Rule.vault_id == row.id).order_by(Rule.id))
    for rule in rules:
        delete = rule.lifecycle.get("delete_after_days")
        label = f"rule {rule.name!r} of plan {rule.plan.name!r}"
        low, high = lock.min_retention_days, lock.max_retention_days
        if low is not None and delete is not None and delete < low:
            problems.append(
                f"{label} deletes after {delete} days, below min_retention_days {low}: its "
                f"points are kept {low} days, and apply refuses the rule until it fits"
            )
        if high is not None and (delete is None or delete > high):
            kept = "forever" if delete is None else f"{delete} days"
            problems.append(
                f"{label} keeps points {kept}, beyond max_retention_days {high}: apply "
                "refuses the rule until it fits"
            )
    return problems


def record_refusal(
    session: Session,
    vault: str,
    *,
    at: datetime,
    actor: str,
    attempted: VaultLock | None,
    privileged: bool,
    reason: str | None,
    why: str,
) -> None:
    """Record a refused attempt to change or remove a lock (in a transaction that commits)."""
    audit.record(
        session,
        audit.LOCK_CHANGE_REFUSED,
        vault,
        at=at,
        actor=actor,
        details={
            "attempted": attempted.model_dump(mode="json") if attempted else None,
            "privileged": privileged,
            "reason": reason,
            "refused_because": why,
        },
    )


class VaultLockService:
    """``strongroom vault lock / unlock / lock-status`` on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def lock(
        self,
        name: str,
        lock: VaultLock,
        *,
        actor: str,
        privileged: bool = False,
        reason: str | None = None,
    ) -> LockChange:
        """Set or change the lock of vault ``name``.

        Raises NotFoundError for an unknown vault, ConfigError for a privileged action
        without a reason, PolicyError (after recording the attempt) when the rules refuse.
        """
        return self._change(name, lock, actor=actor, privileged=privileged, reason=reason)

    def unlock(
        self, name: str, *, actor: str, privileged: bool = False, reason: str | None = None
    ) -> LockChange:
        """Remove the lock of vault ``name`` (errors as for :meth:`lock`)."""
        return self._change(name, None, actor=actor, privileged=privileged, reason=reason)

    def status(self, name: str, *, history: int = 20) -> LockStatus:
        """Return the lock of vault ``name`` and its last ``history`` recorded events."""
        now = self.context.now()
        with self.context.catalog.session(readonly=True) as session:
            state = LockState.of(_vault_row(session, name))
            rows = catalog_events.list_events(
                session, types=list(audit.LOCK_EVENTS), subject=name, limit=None
            )
        events = [
            LockEvent(
                at=row.at,
                type=row.type,
                actor=str(row.payload.get("actor", "")),
                details={key: value for key, value in row.payload.items() if key != "actor"},
            )
            for row in rows[-history:]
        ]
        return LockStatus(state=state, summary=state.describe(now), history=events)

    def _change(
        self,
        name: str,
        new: VaultLock | None,
        *,
        actor: str,
        privileged: bool,
        reason: str | None,
    ) -> LockChange:
        now = self.context.now()
        with self.context.catalog.session() as session:
            row = _vault_row(session, name)
            why = refusal(LockState.of(row), new, now=now, privileged=privileged, reason=reason)
            if why is None:
                return _apply(
                    session, row, new, now=now, actor=actor, privileged=privileged, reason=reason
                )
        with self.context.catalog.session() as session:
            record_refusal(
                session,
                name,
                at=now,
                actor=actor,
                attempted=new,
                privileged=privileged,
                reason=reason,
                why=why,
            )
        raise PolicyError(why, hint="The attempt was recorded in the vault's lock history.")


def _vault_row(session: Session, name: str) -> VaultRow:
    try:
        return get_vault(session, name)
    except NotFoundError as error:
        raise NotFoundError(
            f"no vault named {name!r}",
            hint="Create it with 'strongroom vault create' or declare it and apply.",
        ) from error


# -- declared locks (apply) --------------------------------------------------------------


def check_declared_locks(
    session: Session, vaults: Mapping[str, VaultConfig], *, now: datetime
) -> list[Finding]:
    """Return, for each declared vault lock the rules refuse, a finding at
    ``vaults.<name>.lock`` saying why (apply makes no privileged changes: those are
    done with ``strongroom vault lock/unlock --privileged``)."""
    findings: list[Finding] = []
    for name, config in vaults.items():
        if config.lock is None:
            continue
        try:
            row = get_vault(session, name)
        except NotFoundError:
            continue
        why = refusal(LockState.of(row), config.lock, now=now, privileged=False, reason=None)
        if why is not None:
            findings.append(
                Finding(
                    ("vaults", name, "lock"),
                    "vault_lock_change",
                    why + f"; make the declared lock match 'strongroom vault lock-status {name}'",
                )
            )
    return findings


def register_vault_with_lock(
    session: Session, name: str, config: VaultConfig, at: datetime, *, actor: str
) -> LockChange:
    """Register vault ``name`` (as ``services.vaults.service.register_vault``) keeping its lock
    under the lock rules.

    A configuration without ``lock`` leaves the recorded lock as it is; a declared lock is
    applied as an unprivileged change (recorded as an event by ``actor``). Raises
    PolicyError when the rules refuse the declared lock (run :func:`check_declared_locks`
    first to report it with the other findings).
    """
    try:
        before = LockState.of(get_vault(session, name))
    except NotFoundError:
        before = LockState(vault=name)
    if config.lock is not None:
        why = refusal(before, config.lock, now=at, privileged=False, reason=None)
        if why is not None:
            raise PolicyError(why)
    register_vault(session, name, config, at)
    row = get_vault(session, name)
    _store(row, before, at)  # register_vault rewrote the lock columns from the config
    if config.lock is None:
        return LockChange(name, "unchanged", before, before)
    return _apply(session, row, config.lock, now=at, actor=actor, privileged=False, reason=None)

"""Policy checks that run before an apply commits: the place vault-lock rules plug in.

A check is given the pending apply — the open catalog transaction (holding the state
*before* the writes), what is declared, and the changes — and returns the reasons it
refuses (empty when it agrees). :func:`run_checks` runs every check and refuses the whole
apply with one :class:`~strongroom.errors.PolicyError` listing every reason, before
anything is written; ``--dry-run`` runs the same checks, so a preview shows refusals too.

To add a check (e.g. "a compliance lock past its grace period cannot change", "a rule's
retention must fit the target vault's lock"), write a function of :class:`ApplyCheck`'s
shape and add it to :data:`POLICY_CHECKS`. ``pending.declared.plans`` holds the plans
being applied; ``pending.vaults()`` the vault configurations that will hold afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from strongroom.catalog.resources import list_vaults
from strongroom.config.issues import format_path
from strongroom.config.vaults import VaultConfig
from strongroom.errors import PolicyError
from strongroom.services.declare.diff import Changes, Declared
from strongroom.services.retention.lock import check_declared_locks
from strongroom.services.retention.policy import check_plan_policy
from strongroom.services.vaults.registry import registered_config


@dataclass(frozen=True)
class PendingApply:
    """An apply about to be written: the transaction, the declaration, the changes, the time."""

    session: Session
    declared: Declared
    changes: Changes
    now: datetime

    def vaults(self) -> dict[str, VaultConfig]:
        """The vault configurations once applied: the declared ones over the registered ones."""
        found = {
            row.name: registered_config(self.session, row.name) for row in list_vaults(self.session)
        }
        found.update(self.declared.vaults or {})
        return found


class ApplyCheck(Protocol):
    """A policy check: returns why it refuses the pending apply (nothing when it agrees)."""

    def __call__(self, pending: PendingApply, /) -> Sequence[str]: ...


def plan_retention_check(pending: PendingApply) -> list[str]:
    """Apply check: every plan being applied fits the locks and cold tiers of its vaults.

    Vaults the apply does not declare are checked with the lock the catalog records (not
    the one their stored configuration once declared: ``vault lock``/``unlock`` may have
    changed it since).
    """
    declared = pending.declared.vaults or {}
    vaults = {
        name: config if name in declared else config.model_copy(update={"lock": None})
        for name, config in pending.vaults().items()
    }
    return [
        f"{format_path(finding.location)}: {finding.message}"
        for plan_name, plan in sorted(pending.declared.plans.items())
        for finding in check_plan_policy(
            pending.session, plan, vaults, plan_name=plan_name, now=pending.now
        )
    ]


def declared_lock_check(pending: PendingApply) -> list[str]:
    """Apply check: no declared vault lock changes a lock the lock rules protect."""
    return [
        f"{format_path(finding.location)}: {finding.message}"
        for finding in check_declared_locks(
            pending.session, pending.declared.vaults or {}, now=pending.now
        )
    ]


POLICY_CHECKS: tuple[ApplyCheck, ...] = (plan_retention_check, declared_lock_check)
"""The checks every apply and create-plan runs, in order."""


def run_checks(checks: Sequence[ApplyCheck], pending: PendingApply) -> None:
    """Run every check; raise one ``PolicyError`` listing each refusal (nothing is written)."""
    refusals = [reason for check in checks for reason in check(pending)]
    if refusals:
        raise PolicyError(
            "\n".join(["the policy refuses this apply; nothing was changed:", *refusals]),
            hint="Change the declaration so that it fits the vault locks and retention rules.",
        )

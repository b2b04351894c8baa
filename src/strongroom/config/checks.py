"""Checks that span sections: rules against the vaults they name, selections against resources.

Single models check themselves (pydantic validators); what needs two sections at once lives
here, written over plain mappings so the loader can run it on the parts of a file that are
valid while other parts are not. A declared entry that failed its own validation is given
as ``None``: it counts as declared, but its settings are not checked against.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from strongroom.config.issues import Finding
from strongroom.config.notifications import NotificationsConfig
from strongroom.config.plans import BackupRule, Lifecycle, PlanConfig, Selection
from strongroom.config.resources import ResourceConfig
from strongroom.config.types import Location
from strongroom.config.vaults import NoColdTier, VaultConfig


@dataclass(frozen=True, slots=True)
class PlanParts:
    """The valid rules and selections of a plan, each with its index in the plan.

    Lets the checks run over a plan whose other rules are invalid. ``selections_known`` is
    false when the selection list itself could not be read (then no "plan selects nothing"
    warning is given).
    """

    rules: Sequence[tuple[int, BackupRule]]
    selections: Sequence[tuple[int, Selection]]
    selections_known: bool = True

    @classmethod
    def of(cls, plan: PlanConfig) -> PlanParts:
        """Return all the parts of a valid plan."""
        return cls(list(enumerate(plan.rules)), list(enumerate(plan.selections)))


def _unknown(kind: str, name: str, declared: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, declared, n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif declared:
        hint = "declared: " + ", ".join(sorted(declared))
    else:
        hint = f"no {kind}s are declared"
    return f"{kind} {name!r} is not declared under {kind}s ({hint})"


def _check_vault_use(
    findings: list[Finding],
    where: Location,
    label: str,
    vault_name: str,
    vault_field: str,
    lifecycle: Lifecycle,
    vaults: Mapping[str, VaultConfig | None],
) -> None:
    if vault_name not in vaults:
        findings.append(
            Finding(
                (*where, vault_field), "unknown_vault", _unknown("vault", vault_name, [*vaults])
            )
        )
        return
    vault = vaults[vault_name]
    if vault is None:
        return
    cold, delete = lifecycle.move_to_cold_after_days, lifecycle.delete_after_days
    if cold is not None and isinstance(vault.cold_tier, NoColdTier):
        findings.append(
            Finding(
                (*where, "lifecycle", "move_to_cold_after_days"),
                "no_cold_tier",
                f"{label} moves recovery points to cold storage after {cold} days, but vault "
                f"{vault_name!r} has no cold tier (cold_tier.kind: none); remove "
                "move_to_cold_after_days or give the vault a cold tier",
            )
        )
    elif cold is not None and delete is not None:
        minimum = vault.cold_tier.minimum_storage_days
        if delete - cold < minimum:
            findings.append(
                Finding(
                    (*where, "lifecycle", "delete_after_days"),
                    "cold_minimum",
                    f"{label} moves recovery points to the cold tier of vault {vault_name!r} "
                    f"after {cold} days and deletes them after {delete} days, {delete - cold} "
                    f"days in cold storage; that tier keeps them at least {minimum} days "
                    f"(min_storage_days), so delete_after_days must be at least {cold + minimum}",
                )
            )
    lock = vault.lock
    if lock is None:
        return
    delete_at = (*where, "lifecycle", "delete_after_days")
    shortest = lock.min_retention_days
    if shortest is not None and delete is not None and delete < shortest:
        findings.append(
            Finding(
                delete_at,
                "vault_lock",
                f"{label} deletes recovery points after {delete} days, but vault "
                f"{vault_name!r} is locked with min_retention_days {shortest}",
            )
        )
    if lock.max_retention_days is not None:
        if delete is None:
            findings.append(
                Finding(
                    delete_at,
                    "vault_lock",
                    f"{label} keeps recovery points forever, but vault {vault_name!r} is locked "
                    f"with max_retention_days {lock.max_retention_days}; set delete_after_days",
                )
            )
        elif delete > lock.max_retention_days:
            findings.append(
                Finding(
                    delete_at,
                    "vault_lock",
                    f"{label} deletes recovery points after {delete} days, but vault "
                    f"{vault_name!r} is locked with max_retention_days {lock.max_retention_days}",
                )
            )


def _check_rules(
    findings: list[Finding],
    plan_name: str,
    plan: PlanParts,
    vaults: Mapping[str, VaultConfig | None],
) -> None:
    for index, rule in plan.rules:
        where: Location = ("plans", plan_name, "rules", index)
        label = f"rule {rule.name!r} of plan {plan_name!r}"
        _check_vault_use(
            findings, where, label, rule.target_vault, "target_vault", rule.lifecycle, vaults
        )
        for copy_index, copy in enumerate(rule.copy_actions):
            copy_where: Location = (*where, "copy_actions", copy_index)
            if copy.destination_vault == rule.target_vault:
                findings.append(
                    Finding(
                        (*copy_where, "destination_vault"),
                        "copy_to_self",
                        f"{label} copies recovery points into {rule.target_vault!r}, the vault "
                        "it already writes them to",
                        "warning",
                    )
                )
            _check_vault_use(
                findings,
                copy_where,
                f"copy action {copy_index} of {label}",
                copy.destination_vault,
                "destination_vault",
                copy.lifecycle,
                vaults,
            )


def _check_selections(
    findings: list[Finding],
    plan_name: str,
    plan: PlanParts,
    resources: Mapping[str, ResourceConfig | None],
) -> None:
    where: Location = ("plans", plan_name)
    if plan.selections_known and not plan.selections:
        findings.append(
            Finding(
                where,
                "no_selection",
                f"plan {plan_name!r} has no selections: its rules back up nothing",
                "warning",
            )
        )
    declared = [*resources]
    for index, selection in plan.selections:
        at: Location = (*where, "selections", index)
        for name_index, name in enumerate(selection.names):
            if name != "*" and name not in resources:
                findings.append(
                    Finding(
                        (*at, "names", name_index),
                        "unknown_resource",
                        _unknown("resource", name, declared),
                    )
                )
        for name_index, name in enumerate(selection.not_names):
            if name not in resources:
                findings.append(
                    Finding(
                        (*at, "not_names", name_index),
                        "unknown_resource",
                        _unknown("resource", name, declared),
                        "warning",
                    )
                )
        if any(resource is None for resource in resources.values()):
            continue  # an invalid resource might be the match; its own errors come first
        matched = [
            name
            for name, resource in resources.items()
            if resource is not None and selection.selects(name, resource.type, resource.tags)
        ]
        if not matched:
            findings.append(
                Finding(
                    at,
                    "selection_matches_nothing",
                    f"selection {selection.name!r} of plan {plan_name!r} matches no declared "
                    "resource",
                    "warning",
                )
            )


def check_references(
    vaults: Mapping[str, VaultConfig | None],
    resources: Mapping[str, ResourceConfig | None],
    plans: Mapping[str, PlanConfig | PlanParts],
) -> list[Finding]:
    """Check every plan against the declared vaults and resources.

    Errors: a rule or copy action naming an undeclared vault; a cold move into a vault
    without a cold tier; a deletion sooner than the cold tier's ``min_storage_days`` allows
    (naming the numbers); a retention outside the target vault's lock; a selection naming
    an undeclared resource. Warnings: a plan without selections, a selection matching no
    resource, a copy into the rule's own vault, ``not_names`` naming nothing.
    """
    findings: list[Finding] = []
    for plan_name, plan in plans.items():
        parts = PlanParts.of(plan) if isinstance(plan, PlanConfig) else plan
        _check_rules(findings, plan_name, parts, vaults)
        _check_selections(findings, plan_name, parts, resources)
    return findings


def check_event_targets(
    notifications: NotificationsConfig, vaults: Mapping[str, VaultConfig | None]
) -> list[Finding]:
    """Check the event rules' copy targets against the declared vaults, as a rule's copy
    actions are checked (an undeclared vault, a cold move the vault cannot do)."""
    findings: list[Finding] = []
    for rule_index, rule in enumerate(notifications.rules):
        for target_index, target in enumerate(rule.targets):
            job = target.start_job
            if job is None or job.destination_vault is None:
                continue
            _check_vault_use(
                findings,
                ("notifications", "rules", rule_index, "targets", target_index, "start_job"),
                f"the copy target of event rule {rule.name!r}",
                job.destination_vault,
                "destination_vault",
                job.lifecycle or Lifecycle(),
                vaults,
            )
    return findings

"""``create-plan``'s checks against the catalog: the vaults and resources a plan names.

A configuration file declares its vaults and resources next to its plans, so the loader
checks them; a plan document alone refers to vaults and resources that must already be
registered. The same cross-section checks run (cold tiers, locks, selections matching
nothing), fed with what the catalog holds, and errors name the plan, rule and vault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from strongroom.catalog.resources import list_plans, list_resources, list_vaults
from strongroom.config.checks import check_references
from strongroom.config.issues import ConfigIssue, Finding, format_path
from strongroom.config.plans import PlanConfig
from strongroom.config.vaults import VaultConfig
from strongroom.errors import ConfigError, ConflictError, NotFoundError, StrongroomError
from strongroom.services.declare.resources import resource_model
from strongroom.services.vaults.registry import registered_config

_UNKNOWN = frozenset({"unknown_vault", "unknown_resource"})


def _registered(names: list[str]) -> str:
    return f"registered: {', '.join(names)}" if names else "none is registered"


def _unknown_message(
    plans: Mapping[str, PlanConfig], finding: Finding, vaults: list[str], resources: list[str]
) -> str:
    location = finding.location
    plan_name = str(location[1])
    plan = plans[plan_name]
    index = int(location[3])
    if finding.code == "unknown_vault":
        rule = plan.rules[index]
        if location[4] == "target_vault":
            vault, what = rule.target_vault, "targets"
        else:
            copy_index = int(location[5])
            vault = rule.copy_actions[copy_index].destination_vault
            what = f"copies (copy action {copy_index}) to"
        return (
            f"rule {rule.name!r} of plan {plan_name!r} {what} vault {vault!r}, which is not "
            f"registered in the catalog ({_registered(vaults)})"
        )
    selection = plan.selections[index]
    name = selection.names[int(location[5])]
    return (
        f"selection {selection.name!r} of plan {plan_name!r} names resource {name!r}, which "
        f"is not registered in the catalog ({_registered(resources)})"
    )


def check_plans_against_catalog(
    session: Session, source: str, plans: Mapping[str, PlanConfig], *, replace: bool
) -> list[ConfigIssue]:
    """Check plans about to be created; return the warnings.

    Raises ``ConflictError`` when a plan exists and ``replace`` is false,
    ``NotFoundError`` when a rule targets (or copies to) a vault, or a selection names a
    resource, that is not registered, ``ConfigError`` for the other cross-section errors
    (lifecycle against the vault's cold tier or lock). Each message lists every problem.
    """
    existing = sorted({row.name for row in list_plans(session)} & plans.keys())
    if existing and not replace:
        raise ConflictError(
            f"{source}: plan {', '.join(map(repr, existing))} already exists",
            hint="Give --replace to replace its rules and selections, or rename the plan.",
        )
    vault_rows = list_vaults(session)
    vaults: dict[str, VaultConfig | None] = {}
    for row in vault_rows:
        try:
            vaults[row.name] = registered_config(session, row.name)
        except StrongroomError:
            vaults[row.name] = None
    resources: dict[str, Any] = {}
    for resource in list_resources(session):
        try:
            resources[resource.name] = resource_model(resource)
        except StrongroomError:
            resources[resource.name] = None
    findings = check_references(vaults, resources, plans)
    errors = [finding for finding in findings if finding.severity == "error"]
    lines = [
        _unknown_message(plans, finding, sorted(vaults), sorted(resources))
        if finding.code in _UNKNOWN
        else f"{format_path(finding.location)}: {finding.message}"
        for finding in errors
    ]
    if lines:
        error_class = (
            NotFoundError if any(finding.code in _UNKNOWN for finding in errors) else ConfigError
        )
        raise error_class(
            "\n".join(
                [
                    f"{source}: the plan cannot be created ({len(lines)} error{'s' if len(lines) != 1 else ''})",
                    *lines,
                ]
            ),
            hint="Register the vaults and resources first ('strongroom apply -f CONFIG' or "
            "'strongroom vault create'), or fix the plan.",
        )
    return [
        ConfigIssue(format_path(finding.location), finding.message, None, "warning", finding.code)
        for finding in findings
        if finding.severity == "warning"
    ]

"""The stored form of declared plans and rules, built from a configuration or read back.

``apply`` compares what a file declares with what the catalog holds. Both sides are put in
the same shape first: a rule becomes the values of its catalog columns (the scheduler reads
those: schedule, timezone, windows, target vault, lifecycle, recovery-point tags, copy
actions, the *resolved* retry policy, allow_partial, missed_run_policy), a plan becomes its
selections (the list of selection models dumped as JSON, as ``plans.selections`` stores
them) and its rules. What a plan declares that has no column (its description and tags)
is summarised by ``plans.config_hash``; retry overrides are stored resolved, per rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from strongroom.catalog.models import Plan, Rule
from strongroom.config.plans import BackupRule, PlanConfig, RetryPolicy, Selection
from strongroom.engine.retry import attempts_in_all
from strongroom.errors import ConfigError
from strongroom.services.declare.resources import config_hash

JsonDict = dict[str, Any]

UNSTORED_SETTINGS: Final = "description or tags"
"""How a diff names a change to the plan settings that only ``config_hash`` records."""

_SELECTIONS: Final = TypeAdapter(list[Selection])


def rule_record(rule: BackupRule, retry: RetryPolicy) -> JsonDict:
    """Return the catalog column values of ``rule`` (its retry policy already resolved)."""
    return {
        "schedule": rule.schedule,
        "timezone": rule.timezone,
        "start_window_minutes": rule.start_window_minutes,
        "completion_window_minutes": rule.completion_window_minutes,
        "target_vault": rule.target_vault,
        "lifecycle": rule.lifecycle.model_dump(mode="json"),
        "recovery_point_tags": dict(rule.recovery_point_tags),
        "copy_actions": [action.model_dump(mode="json") for action in rule.copy_actions],
        # The config counts retries after the first attempt (the seed's MaxAttempts); the
        # engine counts every attempt, the first included.
        "retry_policy": retry.model_dump(mode="json")
        | {"max_attempts": attempts_in_all(retry.max_attempts)},
        "allow_partial": rule.allow_partial,
        "missed_run_policy": rule.missed_run_policy,
    }


def rule_record_of_row(row: Rule) -> JsonDict:
    """Return the same values as :func:`rule_record`, read from a catalog row."""
    return {
        "schedule": row.schedule,
        "timezone": row.timezone,
        "start_window_minutes": row.start_window_minutes,
        "completion_window_minutes": row.completion_window_minutes,
        "target_vault": row.vault.name,
        "lifecycle": dict(row.lifecycle),
        "recovery_point_tags": dict(row.recovery_point_tags),
        "copy_actions": [dict(action) for action in row.copy_actions],
        "retry_policy": dict(row.retry_policy),
        "allow_partial": row.allow_partial,
        "missed_run_policy": row.missed_run_policy,
    }


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """A plan in stored form: selections, rules by name, and the hash of the rest."""

    selections: list[JsonDict]
    rules: dict[str, JsonDict]
    config_hash: str | None


def unstored_hash(plan: PlanConfig) -> str:
    """Hash what a plan declares that has no catalog column (retry overrides are stored
    resolved, in each rule's ``retry_policy``)."""
    return config_hash({"description": plan.description, "tags": dict(plan.tags)})


def plan_record(plan: PlanConfig, retry_for: Callable[[str], RetryPolicy]) -> PlanRecord:
    """Return the stored form of ``plan``; ``retry_for`` resolves a rule's retry policy."""
    return PlanRecord(
        selections=[selection.model_dump(mode="json") for selection in plan.selections],
        rules={rule.name: rule_record(rule, retry_for(rule.name)) for rule in plan.rules},
        config_hash=unstored_hash(plan),
    )


def stored_selections(row: Plan) -> list[JsonDict]:
    """The selections a plan row stores (a list; an empty mapping from older rows is none)."""
    value: Any = row.selections
    return [dict(item) for item in value] if isinstance(value, list) else []


def plan_record_of_row(row: Plan) -> PlanRecord:
    """Return the stored form of a plan row and its rules."""
    return PlanRecord(
        selections=stored_selections(row),
        rules={rule.name: rule_record_of_row(rule) for rule in row.rules},
        config_hash=row.config_hash,
    )


def selection_models(row: Plan) -> list[Selection]:
    """Rebuild the selection models of a plan row; raises ``ConfigError`` if damaged."""
    try:
        return _SELECTIONS.validate_python(stored_selections(row))
    except ValidationError as error:
        raise ConfigError(
            f"the catalog's record of the selections of plan {row.name!r} is not valid: {error}"
        ) from None


def selected_resources(
    selections: list[Selection], resources: Mapping[str, tuple[str, Mapping[str, str]]]
) -> list[str]:
    """Return the names (sorted) of the resources, given as name -> (type, tags), selected."""
    return sorted(
        name
        for name, (kind, tags) in resources.items()
        if any(selection.selects(name, kind, tags) for selection in selections)
    )

"""What ``list-plans`` and ``list-resources`` show: the declared state as the catalog holds it.

A plan's selected resources are worked out when listed, from its selections and the
resources registered now (the catalog stores the selections, not their result).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from strongroom.catalog.points import newest_points
from strongroom.catalog.resources import list_plans, list_resources
from strongroom.catalog.types import PointState
from strongroom.services.context import AppContext
from strongroom.services.declare.records import (
    JsonDict,
    rule_record_of_row,
    selected_resources,
    selection_models,
    stored_selections,
)


@dataclass(frozen=True)
class RuleView:
    """One rule as the scheduler reads it."""

    name: str
    schedule: str | None
    timezone: str
    start_window_minutes: int | None
    completion_window_minutes: int | None
    target_vault: str
    lifecycle: JsonDict
    recovery_point_tags: JsonDict
    copy_actions: list[JsonDict]
    retry_policy: JsonDict
    allow_partial: bool
    missed_run_policy: str


@dataclass(frozen=True)
class PlanView:
    """One plan: its rules, its selections and the resources they select now."""

    name: str
    rules: list[RuleView]
    selections: list[JsonDict]
    selected: list[str]
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The plan as JSON."""
        return asdict(self) | {"updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class PointSummary:
    """The newest usable recovery point of a resource."""

    id: str
    vault: str
    created_at: datetime
    state: str


@dataclass(frozen=True)
class ResourceView:
    """One resource: type, tags, the plans selecting it, its newest recovery point."""

    name: str
    type: str
    tags: dict[str, str]
    plans: list[str]
    last_point: PointSummary | None

    def as_json(self) -> dict[str, Any]:
        """The resource as JSON."""
        data = asdict(self)
        if self.last_point is not None:
            data["last_point"]["created_at"] = self.last_point.created_at.isoformat()
        return data


class ListingService:
    """``list-plans`` and ``list-resources`` on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def plans(self) -> list[PlanView]:
        """Every plan with its rules and the resources it selects, by name."""
        context = self.context
        with context.catalog.session(readonly=True) as session:
            resources = {row.name: (row.type, dict(row.tags)) for row in list_resources(session)}
            views = []
            for plan in list_plans(session):
                rules = [
                    RuleView(name=rule.name, **rule_record_of_row(rule))
                    for rule in sorted(plan.rules, key=lambda rule: rule.name)
                ]
                views.append(
                    PlanView(
                        name=plan.name,
                        rules=rules,
                        selections=stored_selections(plan),
                        selected=selected_resources(selection_models(plan), resources),
                        updated_at=plan.updated_at,
                    )
                )
            return views

    def resources(self, *, type: str | None = None) -> list[ResourceView]:
        """Every resource (of one type, if given) with its plans and newest recovery point."""
        context = self.context
        with context.catalog.session(readonly=True) as session:
            selections = {plan.name: selection_models(plan) for plan in list_plans(session)}
            newest = newest_points(session, states=(PointState.AVAILABLE, PointState.PARTIAL))
            views = []
            for row in list_resources(session, type=type):
                tags = {str(key): str(value) for key, value in row.tags.items()}
                point = newest.get(row.id)
                last = (
                    PointSummary(point.id, point.vault.name, point.created_at, point.state.value)
                    if point is not None
                    else None
                )
                plans = [
                    name
                    for name, chosen in selections.items()
                    if any(selection.selects(row.name, row.type, tags) for selection in chosen)
                ]
                views.append(ResourceView(row.name, row.type, tags, plans, last))
            return views

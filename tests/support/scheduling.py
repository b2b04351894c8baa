"""Helpers of the scheduler, run and daemon tests: the seed's production plan, run queries.

The seed plan (``ecommerce-production-database-backup``) has three rules: every 6 hours
(kept 30 days), daily at 03:00 (kept 90 days) and weekly on Sunday at 02:00 into the
long-term vault (kept 365 days); it selects resources tagged ``BackupEnabled=true`` or
``Environment=production``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from strongroom.catalog import Catalog, resources
from strongroom.catalog import runs as catalog_runs
from strongroom.catalog.models import RuleSchedule, Run
from strongroom.engine.run_summary import RunView, run_view
from strongroom.engine.views import JobView, job_view
from tests.support.catalog import T0

PLAN = "production"
CONTINUOUS = {
    "name": "continuous-backup",
    "schedule": "cron(0 */6 * * ? *)",
    "start_window_minutes": 60,
    "completion_window_minutes": 180,
    "lifecycle": {"delete_after_days": 30, "move_to_cold_after_days": 7},
    "recovery_point_tags": {"Environment": "production", "BackupType": "automated"},
}
DAILY = {
    "name": "daily-backup",
    "schedule": "cron(0 3 * * ? *)",
    "start_window_minutes": 60,
    "completion_window_minutes": 240,
    "lifecycle": {"delete_after_days": 90, "move_to_cold_after_days": 30},
    "recovery_point_tags": {"Environment": "production", "BackupType": "daily"},
}
WEEKLY = {
    "name": "weekly-backup",
    "schedule": "cron(0 2 ? * SUN *)",
    "start_window_minutes": 120,
    "completion_window_minutes": 360,
    "vault": "long-term",
    "lifecycle": {"delete_after_days": 365, "move_to_cold_after_days": 90},
    "recovery_point_tags": {"BackupType": "weekly", "Compliance": "required"},
}
SEED_RULES = (CONTINUOUS, DAILY, WEEKLY)
SEED_SELECTIONS = [
    {
        "name": "tagged",
        "list_of_tags": [
            {"key": "BackupEnabled", "value": "true"},
            {"key": "Environment", "value": "production"},
        ],
    }
]
SELECTED = ["cache", "orders-db"]
"""The seed resources the seed selection picks (by name)."""


def seed_resources(catalog: Catalog) -> None:
    """Resources with tags (orders-db and cache are selected, scratch is not) and the
    vaults production and long-term."""
    with catalog.session() as session:
        resources.upsert_resource(
            session,
            name="orders-db",
            type="postgres",
            at=T0,
            tags={"BackupEnabled": "true", "Environment": "production"},
        )
        resources.upsert_resource(
            session, name="cache", type="redis", at=T0, tags={"Environment": "production"}
        )
        resources.upsert_resource(
            session, name="scratch", type="files", at=T0, tags={"Environment": "staging"}
        )
        resources.upsert_vault(session, name="production", url="memory://production", at=T0)
        resources.upsert_vault(session, name="long-term", url="memory://long-term", at=T0)


def seed_plan(
    catalog: Catalog,
    rules: Sequence[Mapping[str, Any]] = SEED_RULES,
    *,
    plan: str = PLAN,
    selections: Sequence[Mapping[str, Any]] = tuple(SEED_SELECTIONS),
    at: datetime = T0,
) -> None:
    """Store a plan with ``rules`` (dicts of rule columns, ``vault`` defaulting to
    ``production``) and ``selections`` (Selection models as JSON), created at ``at``."""
    with catalog.session() as session:
        row = resources.upsert_plan(session, name=plan, at=at)
        row.selections = [dict(selection) for selection in selections]  # type: ignore[assignment]
        for rule in rules:
            settings = dict(rule)
            name = settings.pop("name")
            vault = resources.get_vault(session, settings.pop("vault", "production"))
            resources.upsert_rule(session, plan=row, name=name, vault=vault, at=at, **settings)


def runs(catalog: Catalog, *, rule: str | None = None, plan: str | None = None) -> list[RunView]:
    """Every run (oldest first), optionally of one rule or one plan."""
    with catalog.session(readonly=True) as session:
        rows = catalog_runs.list_runs(session, plan=plan)
        views = [run_view(row) for row in reversed(rows)]
    return [view for view in views if rule is None or view.rule == rule]


def run_jobs(catalog: Catalog, run_id: str) -> list[JobView]:
    """The jobs of one run, oldest first."""
    with catalog.session(readonly=True) as session:
        return [job_view(job) for job in catalog_runs.run_jobs(session, run_id)]


def resources_of(catalog: Catalog, run_id: str) -> list[str]:
    """The names of the resources a run made jobs for, sorted."""
    return sorted(job.resource for job in run_jobs(catalog, run_id) if job.resource)


def fire_state(catalog: Catalog, plan: str, rule: str) -> RuleSchedule | None:
    """The scheduler's stored state of one rule."""
    with catalog.session(readonly=True) as session:
        row = resources.get_rule(session, plan, rule)
        return session.get(RuleSchedule, row.id)


def count_runs(catalog: Catalog) -> int:
    """How many runs the catalog holds."""
    with catalog.session(readonly=True) as session:
        return len(list(session.scalars(select(Run))))

"""Resources, vaults, plans and rules in the catalog: upsert by name, look up by name.

Applying a configuration writes these rows; jobs and recovery points refer to them. Each
function takes an open session and the time from the caller's clock. Connection settings
must hold secret references only (``env:NAME``, ``file:/path``), never secret values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog.models import MISSED_RUN_ONCE, Plan, Resource, Rule, Vault
from strongroom.errors import NotFoundError


def upsert_resource(
    session: Session,
    *,
    name: str,
    type: str,
    at: datetime,
    tags: Mapping[str, str] | None = None,
    connection: Mapping[str, Any] | None = None,
    config_hash: str | None = None,
) -> Resource:
    """Create the resource ``name`` or update its settings; return the row."""
    resource = session.scalar(select(Resource).where(Resource.name == name))
    if resource is None:
        resource = Resource(name=name, created_at=at)
        session.add(resource)
    resource.type = type
    resource.tags = dict(tags or {})
    resource.connection = dict(connection or {})
    resource.config_hash = config_hash
    resource.updated_at = at
    session.flush()
    return resource


def get_resource(session: Session, name: str) -> Resource:
    """Return the resource ``name``; raises NotFoundError."""
    resource = session.scalar(select(Resource).where(Resource.name == name))
    if resource is None:
        raise NotFoundError(f"no resource {name!r} in the catalog")
    return resource


def list_resources(session: Session, *, type: str | None = None) -> list[Resource]:
    """Return resources by name, optionally of one type."""
    statement = select(Resource).order_by(Resource.name)
    if type is not None:
        statement = statement.where(Resource.type == type)
    return list(session.scalars(statement))


def upsert_vault(
    session: Session,
    *,
    name: str,
    url: str,
    at: datetime,
    settings: Mapping[str, Any] | None = None,
    lock_mode: str | None = None,
    lock_min_retention_days: int | None = None,
    lock_max_retention_days: int | None = None,
    lock_changeable_until: datetime | None = None,
    cold_tier_url: str | None = None,
    cold_tier_settings: Mapping[str, Any] | None = None,
) -> Vault:
    """Create the vault ``name`` or update its settings; return the row.

    Whether a lock may still change is the services layer's decision; this only stores.
    """
    vault = session.scalar(select(Vault).where(Vault.name == name))
    if vault is None:
        vault = Vault(name=name, created_at=at)
        session.add(vault)
    vault.url = url
    vault.settings = dict(settings or {})
    vault.lock_mode = lock_mode
    vault.lock_min_retention_days = lock_min_retention_days
    vault.lock_max_retention_days = lock_max_retention_days
    vault.lock_changeable_until = lock_changeable_until
    vault.cold_tier_url = cold_tier_url
    vault.cold_tier_settings = dict(cold_tier_settings or {})
    vault.updated_at = at
    session.flush()
    return vault


def get_vault(session: Session, name: str) -> Vault:
    """Return the vault ``name``; raises NotFoundError."""
    vault = session.scalar(select(Vault).where(Vault.name == name))
    if vault is None:
        raise NotFoundError(f"no vault {name!r} in the catalog")
    return vault


def upsert_plan(
    session: Session,
    *,
    name: str,
    at: datetime,
    selections: Mapping[str, Any] | None = None,
    config_hash: str | None = None,
) -> Plan:
    """Create the plan ``name`` or update it; return the row."""
    plan = session.scalar(select(Plan).where(Plan.name == name))
    if plan is None:
        plan = Plan(name=name, created_at=at)
        session.add(plan)
    plan.selections = dict(selections or {})
    plan.config_hash = config_hash
    plan.updated_at = at
    session.flush()
    return plan


def upsert_rule(
    session: Session,
    *,
    plan: Plan,
    name: str,
    vault: Vault,
    at: datetime,
    schedule: str | None = None,
    timezone: str = "UTC",
    start_window_minutes: int | None = None,
    completion_window_minutes: int | None = None,
    lifecycle: Mapping[str, Any] | None = None,
    recovery_point_tags: Mapping[str, str] | None = None,
    copy_actions: Sequence[Mapping[str, Any]] = (),
    retry_policy: Mapping[str, Any] | None = None,
    allow_partial: bool = False,
    missed_run_policy: str = MISSED_RUN_ONCE,
) -> Rule:
    """Create the rule ``name`` of ``plan`` or update it; return the row.

    ``retry_policy`` holds ``max_attempts``, ``interval_seconds`` and ``backoff_rate``;
    missing keys take the engine's defaults. ``missed_run_policy`` is
    ``run-once-in-window`` or ``skip`` (see ``docs/scheduling.md``).
    """
    rule = session.scalar(select(Rule).where(Rule.plan_id == plan.id, Rule.name == name))
    if rule is None:
        rule = Rule(plan_id=plan.id, name=name, created_at=at)
        session.add(rule)
    rule.vault_id = vault.id
    rule.schedule = schedule
    rule.timezone = timezone
    rule.start_window_minutes = start_window_minutes
    rule.completion_window_minutes = completion_window_minutes
    rule.lifecycle = dict(lifecycle or {})
    rule.recovery_point_tags = dict(recovery_point_tags or {})
    rule.copy_actions = [dict(action) for action in copy_actions]
    rule.retry_policy = dict(retry_policy or {})
    rule.allow_partial = allow_partial
    rule.missed_run_policy = missed_run_policy
    rule.updated_at = at
    session.flush()
    return rule


def get_rule(session: Session, plan: str, name: str) -> Rule:
    """Return rule ``name`` of plan ``plan``; raises NotFoundError."""
    statement = select(Rule).join(Plan).where(Plan.name == plan, Rule.name == name)
    rule = session.scalar(statement)
    if rule is None:
        raise NotFoundError(f"no rule {name!r} in plan {plan!r}")
    return rule


def list_vaults(session: Session) -> list[Vault]:
    """Return every registered vault, by name."""
    return list(session.scalars(select(Vault).order_by(Vault.name)))


def list_plans(session: Session) -> list[Plan]:
    """Return every plan, by name (its rules load with it when read)."""
    return list(session.scalars(select(Plan).order_by(Plan.name)))

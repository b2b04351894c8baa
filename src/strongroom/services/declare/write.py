"""Write the changes of an apply into the catalog, inside the caller's one transaction.

Vaults and resources go through the services that own their representation
(:func:`~strongroom.services.retention.lock.register_vault_with_lock`,
:func:`~strongroom.services.declare.resources.register_resource`); plans and rules are written
here, every rule column filled from the stored form of
:mod:`~strongroom.services.declare.records`. Removals come last, rules before plans and
plans before the resources and vaults they might refer to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy.orm import Session

from strongroom.catalog.models import JSONObject
from strongroom.catalog.models import Plan as PlanRow
from strongroom.catalog.outbox import (
    METRICS,
    MONITOR,
    REPORTS,
    write_notifications,
    write_section,
)
from strongroom.catalog.resources import (
    get_resource,
    get_rule,
    get_vault,
    list_plans,
    upsert_plan,
    upsert_rule,
)
from strongroom.services.declare.diff import Change, Changes, Declared
from strongroom.services.declare.records import JsonDict
from strongroom.services.declare.resources import register_resource
from strongroom.services.declare.settings import write_limits
from strongroom.services.retention.lock import register_vault_with_lock


def _write_rule(session: Session, plan: PlanRow, name: str, record: JsonDict, at: datetime) -> None:
    upsert_rule(
        session,
        plan=plan,
        name=name,
        vault=get_vault(session, record["target_vault"]),
        at=at,
        schedule=record["schedule"],
        timezone=record["timezone"],
        start_window_minutes=record["start_window_minutes"],
        completion_window_minutes=record["completion_window_minutes"],
        lifecycle=record["lifecycle"],
        recovery_point_tags=record["recovery_point_tags"],
        copy_actions=record["copy_actions"],
        retry_policy=record["retry_policy"],
        allow_partial=record["allow_partial"],
        missed_run_policy=record["missed_run_policy"],
    )


def _write_plan(session: Session, declared: Declared, change: Change, at: datetime) -> PlanRow:
    record = declared.records[change.name]
    row = upsert_plan(session, name=change.name, at=at, config_hash=record.config_hash)
    # plans.selections is a JSON column typed as a mapping; it holds the list of selections.
    row.selections = cast(JSONObject, [dict(selection) for selection in record.selections])
    session.flush()
    return row


def write_changes(session: Session, declared: Declared, changes: Changes, at: datetime) -> None:
    """Write every create, update and removal of ``changes`` (``keep`` writes nothing),
    and the declared concurrency limits unless the catalog holds exactly those."""
    if declared.concurrency is not None:
        write_limits(session, declared.concurrency, at)
    if declared.notifications is not None:
        write_notifications(session, declared.notifications, at=at)
    sections = (
        (METRICS, declared.metrics),
        (MONITOR, declared.monitor),
        (REPORTS, declared.reports),
    )
    for name, section in sections:
        if section is not None:
            write_section(session, name, section, at=at)
    for change in changes.of("create", "update"):
        if change.kind == "vault" and declared.vaults is not None:
            register_vault_with_lock(
                session, change.name, declared.vaults[change.name], at, actor="apply"
            )
        elif change.kind == "resource" and declared.resources is not None:
            register_resource(session, change.name, declared.resources[change.name], at)
    plans: dict[str, PlanRow] = {}
    for change in changes.of("create", "update"):
        if change.kind == "plan":
            plans[change.name] = _write_plan(session, declared, change, at)
        elif change.kind == "rule":
            plan_name, _, rule_name = change.name.partition("/")
            record = declared.records[plan_name].rules[rule_name]
            _write_rule(session, plans[plan_name], rule_name, record, at)
    removals = changes.of("remove")
    order = {"rule": 0, "plan": 1, "resource": 2, "vault": 3}
    for change in sorted(removals, key=lambda item: order[item.kind]):
        session.delete(_row(session, change))
        session.flush()


def _row(session: Session, change: Change) -> Any:
    if change.kind == "rule":
        plan_name, _, rule_name = change.name.partition("/")
        return get_rule(session, plan_name, rule_name)
    if change.kind == "plan":
        return next(row for row in list_plans(session) if row.name == change.name)
    if change.kind == "resource":
        return get_resource(session, change.name)
    return get_vault(session, change.name)

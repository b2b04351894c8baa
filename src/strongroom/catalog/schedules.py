"""The scheduler's memory of each rule (next and last fire time, in ``rule_schedules``) and
what it reads at each tick: the rules' schedules, due rules in full, the resources' tags.

Each function takes an open session and the time from the caller's clock. A row is
created the first time the scheduler sees a rule and advanced every time the rule fires
(or its missed firings are skipped). Advancing is a conditional update on the
``next_fire_at`` the caller read: of two schedulers that saw the same firing, exactly one
advances the row, and only that one may start the run.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from strongroom.catalog.jobs import _rowcount as rowcount
from strongroom.catalog.models import Plan, Resource, Rule, RuleSchedule


@dataclass(frozen=True)
class ScheduleHead:
    """What every tick reads of every rule with a schedule: the expression, and the fire
    state the scheduler stored (``state_*`` are ``None`` for a rule not yet seen)."""

    rule_id: int
    plan: str
    rule: str
    schedule: str
    timezone: str
    created_at: datetime
    state_schedule: str | None
    state_timezone: str | None
    next_fire_at: datetime | None


def list_schedule_heads(session: Session) -> list[ScheduleHead]:
    """Return the schedule and fire state of every rule that has a schedule (plain
    columns only: a tick that fires nothing reads nothing more)."""
    statement = (
        select(
            Rule.id,
            Plan.name,
            Rule.name,
            Rule.schedule,
            Rule.timezone,
            Rule.created_at,
            RuleSchedule.schedule,
            RuleSchedule.timezone,
            RuleSchedule.next_fire_at,
        )
        .join(Plan, Rule.plan_id == Plan.id)
        .outerjoin(RuleSchedule, RuleSchedule.rule_id == Rule.id)
        .where(Rule.schedule.is_not(None))
        .order_by(Rule.plan_id, Rule.id)
    )
    return [
        ScheduleHead(
            rule_id=rule_id,
            plan=plan,
            rule=rule,
            schedule=schedule or "",
            timezone=timezone,
            created_at=created_at,
            state_schedule=state_schedule,
            state_timezone=state_timezone,
            next_fire_at=next_fire_at,
        )
        for (
            rule_id,
            plan,
            rule,
            schedule,
            timezone,
            created_at,
            state_schedule,
            state_timezone,
            next_fire_at,
        ) in session.execute(statement)
    ]


def load_rules(session: Session, rule_ids: Collection[int]) -> list[Rule]:
    """Return the given rules with their plan and vault loaded, by plan and rule id."""
    if not rule_ids:
        return []
    statement = (
        select(Rule)
        .where(Rule.id.in_(list(rule_ids)))
        .options(joinedload(Rule.plan), joinedload(Rule.vault))
        .order_by(Rule.plan_id, Rule.id)
    )
    return list(session.scalars(statement).unique())


def list_resource_tags(session: Session) -> list[tuple[int, str, str, dict[str, str]]]:
    """Return ``(id, name, type, tags)`` of every resource, by name: what selections read
    (without the connection settings)."""
    statement = select(Resource.id, Resource.name, Resource.type, Resource.tags).order_by(
        Resource.name
    )
    return [
        (row.id, row.name, row.type, {str(k): str(v) for k, v in (row.tags or {}).items()})
        for row in session.execute(statement)
    ]


def get_schedule_state(session: Session, rule_id: int) -> RuleSchedule | None:
    """Return the fire state of one rule, read fresh, or ``None``."""
    return session.get(RuleSchedule, rule_id, populate_existing=True)


def insert_schedule_state(
    session: Session,
    *,
    rule_id: int,
    schedule: str,
    timezone: str,
    next_fire_at: datetime | None,
    at: datetime,
) -> bool:
    """Create the fire state of a rule the scheduler sees for the first time.

    Returns False when another scheduler created it first (the caller reads it again).
    """
    try:
        with session.begin_nested():
            session.add(
                RuleSchedule(
                    rule_id=rule_id,
                    schedule=schedule,
                    timezone=timezone,
                    next_fire_at=next_fire_at,
                    last_fired_at=None,
                    last_run_id=None,
                    missed_firings=0,
                    updated_at=at,
                )
            )
    except sa_exc.IntegrityError:
        return False
    return True


def advance_schedule_state(
    session: Session,
    *,
    rule_id: int,
    expected_next: datetime | None,
    schedule: str,
    timezone: str,
    next_fire_at: datetime | None,
    at: datetime,
    fired_at: datetime | None = None,
    run_id: str | None = None,
    missed: int = 0,
) -> bool:
    """Move a rule's next fire time on, if it is still ``expected_next``.

    ``fired_at`` and ``run_id`` record a firing; ``missed`` adds to the count of firings
    skipped. Returns False when another scheduler advanced the row first: the caller
    must then not fire.
    """
    current = (
        RuleSchedule.next_fire_at.is_(None)
        if expected_next is None
        else RuleSchedule.next_fire_at == expected_next
    )
    values: dict[str, object] = {
        "schedule": schedule,
        "timezone": timezone,
        "next_fire_at": next_fire_at,
        "missed_firings": RuleSchedule.missed_firings + missed,
        "updated_at": at,
    }
    if fired_at is not None:
        values.update(last_fired_at=fired_at, last_run_id=run_id)
    statement = (
        update(RuleSchedule)
        .where(RuleSchedule.rule_id == rule_id, current)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(session.execute(statement)) == 1

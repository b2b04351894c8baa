"""The scheduler's memory of each rule (next and last fire time, in ``rule_schedules``) and
what it reads at each tick: the scheduled rules and the resources' tags.

Each function takes an open session and the time from the caller's clock. A row is
created the first time the scheduler sees a rule and advanced every time the rule fires
(or its missed firings are skipped). Advancing is a conditional update on the
``next_fire_at`` the caller read: of two schedulers that saw the same firing, exactly one
advances the row, and only that one may start the run.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from strongroom.catalog.jobs import _rowcount as rowcount
from strongroom.catalog.models import Resource, Rule, RuleSchedule


def list_scheduled_rules(session: Session) -> list[tuple[Rule, RuleSchedule | None]]:
    """Return every rule that has a schedule with its fire state (``None`` if not yet seen),
    its plan and vault loaded, by plan and rule id."""
    statement = (
        select(Rule, RuleSchedule)
        .outerjoin(RuleSchedule, RuleSchedule.rule_id == Rule.id)
        .where(Rule.schedule.is_not(None))
        .options(joinedload(Rule.plan), joinedload(Rule.vault))
        .order_by(Rule.plan_id, Rule.id)
    )
    return [(rule, state) for rule, state in session.execute(statement).unique()]


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

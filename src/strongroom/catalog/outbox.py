"""The event outbox: deliveries owed to event-rule targets, their claims, and escalations.

Rows of ``event_deliveries`` go ``pending`` -> ``delivered``, or ``pending`` -> ``dead``
(the dead-letter record). A worker claims a due pending row for a while
(:func:`claim_due`); a claim that lapses (the worker died) makes the row claimable
again, so every delivery happens at least once across restarts. The fan-out cursor (the
last event id the rules were matched against) and the declared ``notifications``
section live in ``settings``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from strongroom.catalog.models import Escalation, EventDelivery, EventRecord, Setting

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
DEAD: Final = "dead"

NOTIFICATIONS: Final = "notifications"
"""The ``settings`` row holding the declared notifications section (channels, rules)."""
METRICS: Final = "metrics"
"""The ``settings`` row holding the declared metrics section (storage prices)."""
MONITOR: Final = "monitor"
"""The ``settings`` row holding the declared monitor section (thresholds)."""
REPORTS: Final = "reports"
"""The ``settings`` row holding the declared reports section (scheduled reports)."""
CURSOR: Final = "outbox_cursor"
"""The ``settings`` row holding the id of the last event the rules were matched against."""


def _read(session: Session, name: str) -> Any:
    row = session.get(Setting, name, populate_existing=True)
    return None if row is None else row.value


def _write(session: Session, name: str, value: Any, at: datetime) -> None:
    row = session.get(Setting, name)
    if row is None:
        session.add(Setting(name=name, value=value, updated_at=at))
    elif row.value != value:
        row.value = value
        row.updated_at = at
    session.flush()


def read_section(session: Session, name: str) -> dict[str, Any] | None:
    """Return a configuration section ``apply`` stored (JSON) by name, or None."""
    value = _read(session, name)
    return dict(value) if isinstance(value, Mapping) else None


def write_section(session: Session, name: str, value: Mapping[str, Any], *, at: datetime) -> None:
    """Store a configuration section (JSON of its validated model) by name."""
    _write(session, name, dict(value), at)


def read_notifications(session: Session) -> dict[str, Any] | None:
    """Return the notifications section ``apply`` stored (JSON), or None."""
    return read_section(session, NOTIFICATIONS)


def write_notifications(session: Session, value: Mapping[str, Any], *, at: datetime) -> None:
    """Store the notifications section (JSON of the validated configuration model).

    The first time, the fan-out cursor starts at the newest event: rules route the
    events published after they were declared, not the whole history.
    """
    _write(session, NOTIFICATIONS, dict(value), at)
    if read_cursor(session) is None:
        write_cursor(session, last_event_id(session), at=at)


def read_cursor(session: Session) -> int | None:
    """Return the id of the last event matched against the rules; None before the first pass."""
    value = _read(session, CURSOR)
    return int(value["event_id"]) if isinstance(value, Mapping) else None


def write_cursor(session: Session, event_id: int, *, at: datetime) -> None:
    """Advance the fan-out cursor to ``event_id``."""
    _write(session, CURSOR, {"event_id": event_id}, at)


def last_event_id(session: Session) -> int:
    """Return the id of the newest stored event (0 when there is none)."""
    return int(session.scalar(select(func.max(EventRecord.id))) or 0)


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to create: which event, which rule, which of its targets."""

    event_id: int
    rule: str
    target: str


def add_deliveries(session: Session, deliveries: Sequence[NewDelivery], *, at: datetime) -> None:
    """Create pending deliveries, due now."""
    for delivery in deliveries:
        session.add(
            EventDelivery(
                event_id=delivery.event_id,
                rule=delivery.rule,
                target=delivery.target,
                state=PENDING,
                attempts=0,
                created_at=at,
                next_attempt_at=at,
            )
        )
    session.flush()


def due_ids(session: Session, *, now: datetime, limit: int) -> list[int]:
    """Return ids of pending deliveries due at ``now`` and not claimed (or claim lapsed)."""
    statement = (
        select(EventDelivery.id)
        .where(
            EventDelivery.state == PENDING,
            EventDelivery.next_attempt_at <= now,
            or_(EventDelivery.claimed_until.is_(None), EventDelivery.claimed_until < now),
        )
        .order_by(EventDelivery.id)
        .limit(limit)
    )
    return [int(delivery_id) for delivery_id in session.scalars(statement)]


def claim(
    session: Session, delivery_id: int, *, worker: str, now: datetime, until: datetime
) -> EventDelivery | None:
    """Claim one due delivery for ``worker`` until ``until``; None when another took it."""
    result = session.execute(
        update(EventDelivery)
        .where(
            EventDelivery.id == delivery_id,
            EventDelivery.state == PENDING,
            or_(EventDelivery.claimed_until.is_(None), EventDelivery.claimed_until < now),
        )
        .values(claimed_by=worker, claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    return session.get(EventDelivery, delivery_id, populate_existing=True)


def finish(
    session: Session,
    delivery_id: int,
    *,
    worker: str,
    state: str,
    at: datetime,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Record one attempt of a delivery ``worker`` holds: ``delivered``, ``dead``, or still
    ``pending`` with ``next_attempt_at``. Returns False when the claim was lost."""
    values: dict[str, Any] = {
        "state": state,
        "attempts": EventDelivery.attempts + 1,
        "claimed_by": None,
        "claimed_until": None,
        "last_error": error,
    }
    if state == DELIVERED:
        values["delivered_at"] = at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    result = session.execute(
        update(EventDelivery)
        .where(EventDelivery.id == delivery_id, EventDelivery.claimed_by == worker)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def list_deliveries(
    session: Session, *, state: str | None = None, rule: str | None = None
) -> list[EventDelivery]:
    """Return deliveries oldest first, by state and rule."""
    statement = select(EventDelivery).execution_options(populate_existing=True)
    if state is not None:
        statement = statement.where(EventDelivery.state == state)
    if rule is not None:
        statement = statement.where(EventDelivery.rule == rule)
    return list(session.scalars(statement.order_by(EventDelivery.id)))


def count_deliveries(session: Session) -> dict[str, int]:
    """Return the number of deliveries in each state."""
    statement = select(EventDelivery.state, func.count()).group_by(EventDelivery.state)
    return {str(state): int(count) for state, count in session.execute(statement)}


OPEN: Final = "open"
RESOLVED: Final = "resolved"


def open_escalation(session: Session, key: str, *, at: datetime, event_id: int | None) -> bool:
    """Open the escalation ``key``; return False when it is open already (no second page)."""
    row = session.get(Escalation, key, populate_existing=True, with_for_update=True)
    if row is None:
        session.add(
            Escalation(dedup_key=key, state=OPEN, opened_at=at, resolved_at=None, event_id=event_id)
        )
    elif row.state == OPEN:
        return False
    else:
        row.state, row.opened_at, row.resolved_at, row.event_id = OPEN, at, None, event_id
    session.flush()
    return True


def resolve_escalation(session: Session, key: str, *, at: datetime) -> bool:
    """Resolve the open escalation ``key``; return False when none is open."""
    row = session.get(Escalation, key, populate_existing=True, with_for_update=True)
    if row is None or row.state != OPEN:
        return False
    row.state, row.resolved_at = RESOLVED, at
    session.flush()
    return True


def is_open(session: Session, key: str) -> bool:
    """Tell whether the escalation ``key`` is open."""
    row = session.get(Escalation, key, populate_existing=True)
    return row is not None and row.state == OPEN


def list_escalations(session: Session, *, open_only: bool = False) -> list[Escalation]:
    """Return escalations by key, only the open ones with ``open_only``."""
    statement = select(Escalation).execution_options(populate_existing=True)
    if open_only:
        statement = statement.where(Escalation.state == OPEN)
    return list(session.scalars(statement.order_by(Escalation.dedup_key)))

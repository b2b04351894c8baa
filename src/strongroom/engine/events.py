"""The in-process event bus, and the names of the events the engine publishes.

Event types are dotted, named after the seed's notifications (``BACKUP_JOB_COMPLETED``
becomes ``backup.job.completed``): ``{kind}.job.{what}`` for every job kind, plus
``backup.escalation`` when the engine gives up on a job. Subscribers pick events with
shell-style patterns (``backup.job.*``, ``*.job.failed``, ``*``).

Publishing is synchronous: handlers run in the publishing thread, in subscription order.
A handler that raises is logged with its traceback and the others still run: a broken
notifier must never fail a backup. Events are also appended to the catalog's ``events``
table; the state machine does that inside the transaction that changes the job (so an
event exists if and only if the change committed) and dispatches after the commit.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog import Catalog
from strongroom.catalog import events as catalog_events
from strongroom.catalog.shapes import EventShape
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import Clock, SystemClock
from strongroom.logs import get_logger

_logger = get_logger(__name__)

ESCALATION: Final = "backup.escalation"
"""The engine gave up on a job (not retryable, or out of attempts): page someone."""

ESCALATION_RESOLVED: Final = "backup.escalation.resolved"
"""A job succeeded whose component had escalated: resolve the page."""
POINT_CREATED: Final = "recovery_point.created"
"""A backup job committed a recovery point (subject: the point's id)."""
RESTORE_TEST_PASSED: Final = "restore_test.passed"
RESTORE_TEST_FAILED: Final = "restore_test.failed"
"""A verify job with a restore test completed, or failed past its retries."""

STATE_CHANGED: Final = "state_changed"
CREATED: Final = "created"
QUEUED: Final = "queued"
STARTED: Final = "started"
COMPLETED: Final = "completed"
PARTIAL: Final = "partial"
FAILED: Final = "failed"
ABORTED: Final = "aborted"
EXPIRED: Final = "expired"
RETRY_SCHEDULED: Final = "retry_scheduled"
PROGRESS: Final = "progress"

_NAME_OF_STATE: Final[Mapping[JobState, str]] = {
    JobState.CREATED: CREATED,
    JobState.PENDING: QUEUED,
    JobState.RUNNING: STARTED,
    JobState.COMPLETED: COMPLETED,
    JobState.PARTIAL: PARTIAL,
    JobState.FAILED: FAILED,
    JobState.ABORTED: ABORTED,
    JobState.EXPIRED: EXPIRED,
}


def job_event_type(kind: JobKind | str, name: str) -> str:
    """Return the event type for a job kind and event name: ``backup.job.completed``."""
    return f"{JobKind(kind).value}.job.{name}"


def transition_event_types(
    kind: JobKind, from_state: JobState | None, to_state: JobState
) -> list[str]:
    """Return the event types one transition publishes: ``state_changed`` and its own.

    RUNNING -> PENDING is a retry (``retry_scheduled``) rather than a new ``queued``.
    """
    retry = from_state is JobState.RUNNING and to_state is JobState.PENDING
    name = RETRY_SCHEDULED if retry else _NAME_OF_STATE[to_state]
    return [job_event_type(kind, STATE_CHANGED), job_event_type(kind, name)]


@dataclass(frozen=True)
class Event:
    """One thing that happened: a type, what it is about (``subject``) and JSON details.

    ``id`` is set once the event is stored in the catalog.
    """

    type: str
    subject: str
    at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


def event_document(event: Event) -> dict[str, Any]:
    """The event in its one JSON shape (docs/events.md), as consumers receive it."""
    shape = EventShape(
        id=event.id,
        type=event.type,
        subject=event.subject,
        at=event.at,
        payload=dict(event.payload),
    )
    return shape.model_dump(mode="json")


EventHandler = Callable[[Event], None]


@dataclass(frozen=True)
class Subscription:
    """A handle returned by :meth:`EventBus.subscribe`; pass it to ``unsubscribe``."""

    number: int
    pattern: str
    handler: EventHandler


class EventBus:
    """Synchronous publish/subscribe inside one process, persisting to the catalog.

    Given a catalog, :meth:`publish` appends each event to its ``events`` table before
    dispatching; without one, events are only dispatched (unit tests, dry runs).
    """

    def __init__(self, catalog: Catalog | None = None, clock: Clock | None = None) -> None:
        self._catalog = catalog
        self._clock: Clock = clock or SystemClock()
        self._subscriptions: list[Subscription] = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def subscribe(self, pattern: str, handler: EventHandler) -> Subscription:
        """Call ``handler`` for every event whose type matches ``pattern`` (``fnmatch`` style)."""
        subscription = Subscription(next(self._numbers), pattern, handler)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a subscription (no-op if already stopped)."""
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s is not subscription]

    def publish(
        self,
        type: str,
        subject: str,
        payload: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> Event:
        """Store (when the bus has a catalog) and dispatch one event; return it.

        The event is stored in a transaction of its own: inside a state-machine unit of
        work use ``Work.publish`` instead, so that the event commits with the change.
        """
        event = Event(type=type, subject=subject, at=at or self._clock.now(), payload=payload or {})
        if self._catalog is not None:
            with self._catalog.session() as session:
                event = record(session, event)
        self.dispatch(event)
        return event

    def dispatch(self, event: Event) -> None:
        """Call every matching handler now; log, never raise, what a handler raises."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            if not fnmatchcase(event.type, subscription.pattern):
                continue
            try:
                subscription.handler(event)
            except Exception:
                _logger.exception(
                    "event handler failed",
                    extra={"event_type": event.type, "subject": event.subject},
                )


def record(session: Session, event: Event) -> Event:
    """Append ``event`` to the catalog in ``session``'s transaction; return it with its id."""
    row = catalog_events.append_event(
        session, at=event.at, type=event.type, subject=event.subject, payload=event.payload
    )
    return replace(event, id=row.id)

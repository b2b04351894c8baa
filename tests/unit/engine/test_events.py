"""The event bus: patterns, persistence to the catalog, and handlers that fail alone."""

from __future__ import annotations

import logging

import pytest

from strongroom.catalog import Catalog
from strongroom.catalog import events as catalog_events
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import ManualClock
from strongroom.engine.events import (
    ESCALATION,
    Event,
    EventBus,
    job_event_type,
    transition_event_types,
)
from tests.support.catalog import T0


def test_subscribers_get_the_events_their_pattern_matches(clock: ManualClock) -> None:
    bus = EventBus(clock=clock)
    received: dict[str, list[str]] = {"all": [], "backup": [], "failed": [], "exact": []}
    bus.subscribe("*", lambda event: received["all"].append(event.type))
    bus.subscribe("backup.job.*", lambda event: received["backup"].append(event.type))
    bus.subscribe("*.job.failed", lambda event: received["failed"].append(event.type))
    bus.subscribe(ESCALATION, lambda event: received["exact"].append(event.type))

    for type in ("backup.job.completed", "restore.job.failed", "backup.escalation"):
        bus.publish(type, "job-1", {"n": 1})

    assert received == {
        "all": ["backup.job.completed", "restore.job.failed", "backup.escalation"],
        "backup": ["backup.job.completed"],
        "failed": ["restore.job.failed"],
        "exact": ["backup.escalation"],
    }


def test_a_failing_handler_is_logged_and_the_others_still_run(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus(clock=clock)
    received: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("notifier down")

    bus.subscribe("*", broken)
    bus.subscribe("*", received.append)
    with caplog.at_level(logging.ERROR, logger="strongroom"):
        event = bus.publish("backup.job.failed", "job-1")

    assert received == [event]
    assert any(
        record.exc_info and "notifier down" in str(record.exc_info[1]) for record in caplog.records
    )


def test_unsubscribed_handlers_get_nothing(clock: ManualClock) -> None:
    bus = EventBus(clock=clock)
    received: list[Event] = []
    subscription = bus.subscribe("*", received.append)
    bus.unsubscribe(subscription)
    bus.unsubscribe(subscription)
    bus.publish("backup.job.completed", "job-1")
    assert received == []


def test_published_events_are_appended_to_the_catalog(catalog: Catalog, clock: ManualClock) -> None:
    bus = EventBus(catalog, clock)
    first = bus.publish("backup.job.completed", "job-1", {"bytes": 5})
    second = bus.publish("backup.escalation", "job-2")

    with catalog.session(readonly=True) as session:
        stored = [
            (e.id, e.type, e.subject, e.payload, e.at) for e in catalog_events.list_events(session)
        ]

    assert first.id is not None and second.id is not None and first.id < second.id
    assert stored == [
        (first.id, "backup.job.completed", "job-1", {"bytes": 5}, T0),
        (second.id, "backup.escalation", "job-2", {}, T0),
    ]


@pytest.mark.parametrize(
    ("from_state", "to_state", "name"),
    [
        (None, JobState.CREATED, "created"),
        (JobState.CREATED, JobState.PENDING, "queued"),
        (JobState.PENDING, JobState.RUNNING, "started"),
        (JobState.RUNNING, JobState.PENDING, "retry_scheduled"),
        (JobState.RUNNING, JobState.COMPLETED, "completed"),
        (JobState.RUNNING, JobState.PARTIAL, "partial"),
        (JobState.RUNNING, JobState.FAILED, "failed"),
        (JobState.PENDING, JobState.ABORTED, "aborted"),
        (JobState.PENDING, JobState.EXPIRED, "expired"),
    ],
)
def test_each_transition_publishes_state_changed_and_its_own_event(
    from_state: JobState | None, to_state: JobState, name: str
) -> None:
    assert transition_event_types(JobKind.RESTORE, from_state, to_state) == [
        "restore.job.state_changed",
        f"restore.job.{name}",
    ]
    assert job_event_type("copy", "completed") == "copy.job.completed"

"""The state machine: the table of legal transitions, and how transitions are applied."""

from __future__ import annotations

import itertools

import pytest

from strongroom.catalog import Catalog
from strongroom.catalog import events as catalog_events
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.events import Event
from strongroom.engine.jobs import JobService
from strongroom.engine.states import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    IllegalTransitionError,
    JobStateMachine,
    check_transition,
)
from strongroom.errors import ConflictError

S = JobState
# Written out by hand on purpose: this is the specification the table must match.
LEGAL = {
    (S.CREATED, S.PENDING),
    (S.CREATED, S.ABORTED),
    (S.CREATED, S.EXPIRED),
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.ABORTED),
    (S.PENDING, S.EXPIRED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.PARTIAL),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.ABORTED),
    (S.RUNNING, S.EXPIRED),
    (S.RUNNING, S.PENDING),
}


@pytest.mark.parametrize(
    ("from_state", "to_state"), list(itertools.product(JobState, JobState)), ids=str
)
def test_exactly_the_specified_transitions_are_legal(
    from_state: JobState, to_state: JobState
) -> None:
    legal = (from_state, to_state) in LEGAL
    assert (to_state in ALLOWED_TRANSITIONS[from_state]) is legal
    if legal:
        check_transition(from_state, to_state, allow_partial=True)
    else:
        with pytest.raises(IllegalTransitionError) as raised:
            check_transition(from_state, to_state, allow_partial=True)
        assert not raised.value.retryable
        assert isinstance(raised.value, ConflictError)


def test_terminal_states_lead_nowhere() -> None:
    assert {S.COMPLETED, S.PARTIAL, S.FAILED, S.ABORTED, S.EXPIRED} == TERMINAL_STATES
    assert all(not ALLOWED_TRANSITIONS[state] for state in TERMINAL_STATES)


def test_partial_is_legal_only_for_jobs_that_allow_it() -> None:
    check_transition(S.RUNNING, S.PARTIAL, allow_partial=True)
    with pytest.raises(IllegalTransitionError, match="partial"):
        check_transition(S.RUNNING, S.PARTIAL, allow_partial=False)


def test_a_transition_is_recorded_and_published_after_commit(
    machine: JobStateMachine, service: JobService, catalog: Catalog, events: list[Event]
) -> None:
    job_id = service.create_job(JobKind.BACKUP, "orders-db", "main")
    committed_when_dispatched: list[bool] = []

    def check_committed(event: Event) -> None:
        with catalog.session(readonly=True) as session:
            stored = catalog_events.list_events(session, subject=job_id)
        committed_when_dispatched.append(event.id in {e.id for e in stored})

    machine.bus.subscribe("*", check_committed)
    view = machine.transition(job_id, S.ABORTED, reason="operator said so")

    assert view.state is S.ABORTED
    assert view.finished_at == machine.clock.now()
    assert [(t.from_state, t.to_state, t.reason) for t in service.transitions(job_id)] == [
        (None, S.CREATED, "created"),
        (S.CREATED, S.PENDING, "queued"),
        (S.PENDING, S.ABORTED, "operator said so"),
    ]
    assert [e.type for e in events] == [
        "backup.job.state_changed",
        "backup.job.created",
        "backup.job.state_changed",
        "backup.job.queued",
        "backup.job.state_changed",
        "backup.job.aborted",
    ]
    assert events[-1].payload["from_state"] == "PENDING"
    assert events[-1].payload["job"]["resource"] == "orders-db"
    assert events[-1].payload["job"]["id"] == job_id
    assert committed_when_dispatched == [True, True]
    with catalog.session(readonly=True) as session:
        assert [e.id for e in catalog_events.list_events(session, subject=job_id)] == [
            e.id for e in events
        ]


def test_an_illegal_transition_changes_and_publishes_nothing(
    machine: JobStateMachine, service: JobService, events: list[Event]
) -> None:
    job_id = service.create_job(JobKind.BACKUP, "orders-db", "main")
    machine.transition(job_id, S.ABORTED, reason="cancelled")
    published = len(events)

    for target in (S.PENDING, S.RUNNING, S.COMPLETED, S.ABORTED):
        with pytest.raises(IllegalTransitionError, match="terminal"):
            machine.transition(job_id, target, reason="again")

    assert service.get(job_id).state is S.ABORTED
    assert len(service.transitions(job_id)) == 3
    assert len(events) == published


def test_a_stale_expected_state_loses_with_a_conflict(
    machine: JobStateMachine, service: JobService
) -> None:
    job_id = service.create_job(JobKind.BACKUP, "orders-db", "main")
    with pytest.raises(ConflictError, match="not CREATED"):
        machine.transition(job_id, S.ABORTED, reason="late", expected=S.CREATED)
    assert service.get(job_id).state is S.PENDING


def test_only_a_claim_starts_a_job_because_only_a_claim_leases_it(
    machine: JobStateMachine, service: JobService
) -> None:
    job_id = service.create_job(JobKind.BACKUP, "orders-db", "main")
    with pytest.raises(IllegalTransitionError, match="through a claim"):
        machine.transition(job_id, S.RUNNING, reason="forced")

    with machine.work() as work:
        claimed = work.claim(owner="w1", kinds=[JobKind.BACKUP], lease_seconds=60)
        assert claimed is not None and claimed.lease_owner == "w1"
    assert service.get(job_id).state is S.RUNNING


def test_a_retry_counts_the_next_attempt_drops_the_lease_and_stops_at_the_maximum(
    machine: JobStateMachine, service: JobService
) -> None:
    job_id = service.create_job(JobKind.BACKUP, "orders-db", "main", rule="daily/fast")

    def claim() -> None:
        with machine.work() as work:
            assert work.claim(owner="w1", kinds=[JobKind.BACKUP], lease_seconds=60) is not None

    claim()
    retried = machine.transition(job_id, S.PENDING, reason="retry")
    assert (retried.attempt, retried.lease_owner, retried.lease_expires_at) == (2, None, None)
    claim()
    with pytest.raises(IllegalTransitionError, match="all 2 attempts"):
        machine.transition(job_id, S.PENDING, reason="one more")
    assert service.get(job_id).state is S.RUNNING

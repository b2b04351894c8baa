"""The one job state machine, shared by backup, restore, verify, copy and delete jobs.

::

    CREATED ──> PENDING ──> RUNNING ──> COMPLETED
       │           │   ^       │──────> PARTIAL    (only if the job allows partial results)
       │           │   └───────│ retry  FAILED
       │           │           │──────> ABORTED    (cancelled: user, shutdown, completion window)
       └───────────┴───────────┴──────> EXPIRED    (start window closed before it ran)
       (CREATED and PENDING may also go straight to ABORTED)

:data:`ALLOWED_TRANSITIONS` is the table; anything else raises
:class:`IllegalTransitionError`. Terminal states have no way out.

:class:`JobStateMachine` applies transitions to the catalog. Each change is an optimistic
``UPDATE … WHERE state = <expected>`` (two workers cannot both win), is recorded in
``job_transitions`` with its time and reason, and publishes ``{kind}.job.state_changed``
plus an event of its own (``started``, ``completed``, ``retry_scheduled`` …). The events
are stored in the same transaction and dispatched on the bus after it commits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog import Catalog
from strongroom.catalog import events as catalog_events
from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.jobs import ConcurrencyLimits, JobGuard
from strongroom.catalog.models import Job
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import Clock, SystemClock
from strongroom.engine.events import Event, EventBus, record, transition_event_types
from strongroom.engine.views import TERMINAL_STATES, JobView, job_event_payload, job_view
from strongroom.errors import IllegalTransitionError

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TERMINAL_STATES",
    "IllegalTransitionError",
    "JobState",
    "JobStateMachine",
    "Work",
    "check_transition",
]

ALLOWED_TRANSITIONS: Final[Mapping[JobState, frozenset[JobState]]] = MappingProxyType(
    {
        JobState.CREATED: frozenset({JobState.PENDING, JobState.ABORTED, JobState.EXPIRED}),
        JobState.PENDING: frozenset({JobState.RUNNING, JobState.ABORTED, JobState.EXPIRED}),
        JobState.RUNNING: frozenset(
            {
                JobState.COMPLETED,
                JobState.PARTIAL,
                JobState.FAILED,
                JobState.ABORTED,
                JobState.EXPIRED,
                JobState.PENDING,  # a retry: attempt + 1, not before next_attempt_at
            }
        ),
        **{state: frozenset[JobState]() for state in TERMINAL_STATES},
    }
)
"""Which states may follow each state."""


def check_transition(from_state: JobState, to_state: JobState, *, allow_partial: bool) -> None:
    """Raise IllegalTransitionError unless ``from_state -> to_state`` is in the table.

    RUNNING -> PARTIAL is legal only for jobs that allow partial results.
    """
    if to_state not in ALLOWED_TRANSITIONS[from_state]:
        final = " (a terminal state)" if from_state in TERMINAL_STATES else ""
        raise IllegalTransitionError(f"a job cannot go from {from_state}{final} to {to_state}")
    if to_state is JobState.PARTIAL and not allow_partial:
        raise IllegalTransitionError(
            "this job does not allow partial results; it can complete or fail, not be PARTIAL"
        )


class Work:
    """One catalog transaction of the state machine (see :meth:`JobStateMachine.work`).

    ``session`` is open for other catalog calls that must commit or fail together with
    the transitions (failure records, recovery points). ``now`` is fixed for the whole
    unit so that every row it writes carries the same time.
    """

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now
        self.events: list[Event] = []

    def create(
        self,
        *,
        job_id: str,
        kind: JobKind,
        max_attempts: int,
        retry_interval_seconds: float,
        retry_backoff_rate: float,
        **fields: Any,
    ) -> Job:
        """Insert a job in CREATED (see :func:`strongroom.catalog.jobs.create_job`)."""
        job = catalog_jobs.create_job(
            self.session,
            job_id=job_id,
            kind=kind,
            at=self.now,
            max_attempts=max_attempts,
            retry_interval_seconds=retry_interval_seconds,
            retry_backoff_rate=retry_backoff_rate,
            **fields,
        )
        self._publish_transition(job, None, JobState.CREATED, "created")
        return job

    def transition(
        self,
        job_id: str,
        to_state: JobState,
        *,
        reason: str,
        expected: JobState | None = None,
        guard: JobGuard | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> Job:
        """Move one job to ``to_state``, record it, queue its events; return the row.

        ``expected`` is the state the caller believes the job is in (default: what it
        reads now). Leaving RUNNING drops the lease; RUNNING -> PENDING (a retry) counts
        the next attempt and is refused once every attempt is used; entering a terminal
        state stamps ``finished_at``. Only :meth:`claim` enters RUNNING, because only a
        claim leases the job to a worker. Raises IllegalTransitionError for a move the
        table (or the rules above) forbids, ConflictError when the job changed under the
        caller (or the guard failed), NotFoundError.
        """
        job = catalog_jobs.get_job(self.session, job_id)
        from_state = expected if expected is not None else job.state
        check_transition(from_state, to_state, allow_partial=job.allow_partial)
        if to_state is JobState.RUNNING:
            raise IllegalTransitionError(
                f"job {job_id} can only start RUNNING through a claim, which leases it to a worker"
            )
        values = dict(changes or {})
        if from_state is JobState.RUNNING:
            values.update(lease_owner=None, lease_expires_at=None)
        if from_state is JobState.RUNNING and to_state is JobState.PENDING:
            if job.attempt >= job.max_attempts:
                raise IllegalTransitionError(
                    f"job {job_id} used all {job.max_attempts} attempts; it cannot be retried"
                )
            values.setdefault("attempt", job.attempt + 1)
        if to_state in TERMINAL_STATES:
            values.setdefault("finished_at", self.now)
            values.update(next_attempt_at=None)
        job = catalog_jobs.transition_job(
            self.session,
            job_id,
            from_state=from_state,
            to_state=to_state,
            at=self.now,
            reason=reason,
            guard=guard,
            changes=values,
        )
        self._publish_transition(job, from_state, to_state, reason)
        return job

    def create_pending(self, jobs: Sequence[JobView], *, reason: str = "queued") -> None:
        """Insert many new jobs straight into PENDING, recording and publishing what
        :meth:`create` then :meth:`transition` to PENDING would, in a few statements.

        ``jobs`` describe the new jobs (state PENDING, attempt 1, with the names of their
        resource, vault and rule, which the events carry). For the scheduler's runs.
        """
        catalog_jobs.insert_pending_jobs(
            self.session,
            [
                {
                    "id": job.id,
                    "kind": job.kind,
                    "resource_id": job.resource_id,
                    "vault_id": job.vault_id,
                    "rule_id": job.rule_id,
                    "run_id": job.run_id,
                    "params": job.params,
                    "allow_partial": job.allow_partial,
                    "max_attempts": job.max_attempts,
                    "retry_interval_seconds": job.retry_interval_seconds,
                    "retry_backoff_rate": job.retry_backoff_rate,
                    "start_by": job.start_by,
                    "complete_by": job.complete_by,
                }
                for job in jobs
            ],
            at=self.now,
            queued_reason=reason,
        )
        events: list[tuple[str, str, Mapping[str, Any]]] = []
        for job in jobs:
            for from_state, to_state, why in (
                (None, JobState.CREATED, "created"),
                (JobState.CREATED, JobState.PENDING, reason),
            ):
                as_inserted = replace(job, state=to_state, created_at=self.now, updated_at=self.now)
                payload = job_event_payload(as_inserted, from_state=from_state, reason=why)
                events.extend(
                    (type, job.id, payload)
                    for type in transition_event_types(job.kind, from_state, to_state)
                )
        self.publish_many(events)

    def claim(
        self,
        *,
        owner: str,
        kinds: Collection[JobKind],
        lease_seconds: float,
        limits: ConcurrencyLimits | None = None,
        only: Collection[str] | None = None,
    ) -> Job | None:
        """Claim the next runnable job for ``owner`` (see :func:`catalog.jobs.claim_next_job`;
        ``limits`` ``None``: the limits stored in the catalog; ``only``: just these job ids)."""
        job = catalog_jobs.claim_next_job(
            self.session,
            owner=owner,
            now=self.now,
            lease_seconds=lease_seconds,
            kinds=kinds,
            limits=limits,
            only=only,
        )
        if job is not None:
            self._publish_transition(job, JobState.PENDING, JobState.RUNNING, f"claimed by {owner}")
        return job

    def publish(self, type: str, subject: str, payload: Mapping[str, Any]) -> Event:
        """Store an event in this transaction; it is dispatched after the commit."""
        event = record(
            self.session, Event(type=type, subject=subject, at=self.now, payload=payload)
        )
        self.events.append(event)
        return event

    def publish_many(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[Event]:
        """Store many events (type, subject, payload) in this transaction in one statement;
        they are dispatched after the commit, in order."""
        ids = catalog_events.append_events(
            self.session, [(self.now, type, subject, payload) for type, subject, payload in events]
        )
        made = [
            Event(type=type, subject=subject, at=self.now, payload=payload, id=event_id)
            for (type, subject, payload), event_id in zip(events, ids, strict=True)
        ]
        self.events.extend(made)
        return made

    def view(self, job: Job) -> JobView:
        """Snapshot a row of this session."""
        return job_view(job)

    def _publish_transition(
        self, job: Job, from_state: JobState | None, to_state: JobState, reason: str
    ) -> None:
        payload = job_event_payload(job_view(job), from_state=from_state, reason=reason)
        for type in transition_event_types(job.kind, from_state, to_state):
            self.publish(type, job.id, payload)


class JobStateMachine:
    """Applies legal transitions to jobs in the catalog and publishes them on the bus."""

    def __init__(self, catalog: Catalog, bus: EventBus, clock: Clock | None = None) -> None:
        self.catalog = catalog
        self.bus = bus
        self.clock: Clock = clock or SystemClock()

    @contextmanager
    def work(self) -> Iterator[Work]:
        """Open one transaction; on commit, dispatch the events it stored (in order)."""
        with self.catalog.session() as session:
            work = Work(session, self.clock.now())
            yield work
        for event in work.events:
            self.bus.dispatch(event)

    def transition(
        self,
        job_id: str,
        to_state: JobState,
        *,
        reason: str,
        expected: JobState | None = None,
        guard: JobGuard | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> JobView:
        """Apply one transition in its own transaction (see :meth:`Work.transition`)."""
        with self.work() as work:
            job = work.transition(
                job_id, to_state, reason=reason, expected=expected, guard=guard, changes=changes
            )
            return work.view(job)

    def get(self, job_id: str) -> JobView:
        """Return a snapshot of one job; raises NotFoundError."""
        with self.catalog.session(readonly=True) as session:
            return job_view(catalog_jobs.get_job(session, job_id))

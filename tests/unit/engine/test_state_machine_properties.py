"""Hypothesis drives random sequences of job operations; the invariants always hold.

Operations: create jobs (with and without partial results, with one or three attempts),
claim them as one of two workers, finish them (completed, partial, retryable or fatal
failure) with the worker's guard, cancel them, let time pass, recover expired leases,
expire missed starts, and force arbitrary transitions. After every step:

* every job's recorded transitions form one chain from CREATED to its current state, and
  each was published as a ``state_changed`` event;
* a job that reached a terminal state never leaves it;
* PARTIAL happens only to jobs that allow it; attempts never exceed the maximum;
* a RUNNING job has a lease and no other job does;
* no resource ever has two backups RUNNING.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
)

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog import events as catalog_events
from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.jobs import JobGuard
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import ManualClock
from strongroom.engine.events import EventBus
from strongroom.engine.jobs import JobService
from strongroom.engine.outcomes import complete
from strongroom.engine.recovery import expire_missed_starts, recover_expired_leases
from strongroom.engine.retry import RetryPolicy, handle_failure
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import TERMINAL_STATES, JobView
from strongroom.errors import AccessDeniedError, ConflictError, IllegalTransitionError, NetworkError
from tests.support.catalog import T0
from tests.unit.engine.support import seed_config

RESOURCES = ["orders-db", "billing-db", "cache"]
WORKERS = ["w1", "w2"]
LEASE_SECONDS = 60


class JobLifecycle(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self._folder = tempfile.TemporaryDirectory()
        self.catalog: Catalog = open_catalog(None, Path(self._folder.name))
        seed_config(self.catalog)
        self.clock = ManualClock(T0)
        self.machine = JobStateMachine(self.catalog, EventBus(self.catalog, self.clock), self.clock)
        self.service = JobService(self.machine)
        self.final: dict[str, JobState] = {}

    def teardown(self) -> None:
        self.catalog.close()
        self._folder.cleanup()

    # --- operations ---------------------------------------------------------------------

    @rule(
        target=jobs,
        kind=st.sampled_from([JobKind.BACKUP, JobKind.BACKUP, JobKind.RESTORE]),
        resource=st.sampled_from(RESOURCES),
        rule_name=st.sampled_from(["daily/nightly", "daily/partial", "daily/windowed"]),
        attempts=st.sampled_from([1, 3]),
    )
    def create(self, kind: JobKind, resource: str, rule_name: str, attempts: int) -> str:
        return self.service.create_job(
            kind,
            resource,
            rule=rule_name,
            retry_policy=RetryPolicy(max_attempts=attempts, interval_seconds=30),
        )

    @rule(owner=st.sampled_from(WORKERS))
    def claim(self, owner: str) -> None:
        with self.machine.work() as work:
            work.claim(owner=owner, kinds=list(JobKind), lease_seconds=LEASE_SECONDS)

    @rule(job_id=jobs, partial=st.booleans())
    def succeed(self, job_id: str, partial: bool) -> None:
        job = self.service.get(job_id)
        if job.state is not JobState.RUNNING:
            return
        with self.machine.work() as work:
            complete(work, job, result={"ok": True}, partial=partial, guard=self._guard(job))

    @rule(job_id=jobs, retryable=st.booleans())
    def fail(self, job_id: str, retryable: bool) -> None:
        job = self.service.get(job_id)
        if job.state is not JobState.RUNNING:
            return
        error = NetworkError("reset") if retryable else AccessDeniedError("denied")
        with self.machine.work() as work:
            handle_failure(work, job, error, guard=self._guard(job))

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        try:
            self.service.cancel(job_id)
        except IllegalTransitionError:
            assert self.service.get(job_id).is_terminal

    @rule(seconds=st.sampled_from([1, 30, 61, 3601]))
    def let_time_pass(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def recover(self) -> None:
        recover_expired_leases(self.machine)
        expire_missed_starts(self.machine)

    @rule(job_id=jobs, target_state=st.sampled_from(list(JobState)))
    def force(self, job_id: str, target_state: JobState) -> None:
        before = self.service.get(job_id)
        try:
            after = self.machine.transition(job_id, target_state, reason="forced")
        except (IllegalTransitionError, ConflictError):
            assert self.service.get(job_id).state is before.state
        else:
            assert after.state is target_state

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def every_transition_is_recorded_published_and_chained(self) -> None:
        with self.catalog.session(readonly=True) as session:
            for job in catalog_jobs.list_jobs(session):
                transitions = catalog_jobs.list_transitions(session, job.id)
                states = [t.to_state for t in transitions]
                assert [t.from_state for t in transitions] == [None, *states[:-1]]
                assert states[0] is JobState.CREATED
                assert states[-1] is job.state
                published = catalog_events.list_events(
                    session, types=["*.job.state_changed"], subject=job.id, limit=None
                )
                assert [e.payload["job"]["state"] for e in published] == [s.value for s in states]

    @invariant()
    def terminal_states_are_final(self) -> None:
        for job in self.service.list():
            if job.id in self.final:
                assert job.state is self.final[job.id]
            elif job.is_terminal:
                self.final[job.id] = job.state

    @invariant()
    def partial_attempts_and_leases_are_consistent(self) -> None:
        for job in self.service.list():
            assert job.state is not JobState.PARTIAL or job.allow_partial
            assert 1 <= job.attempt <= job.max_attempts
            holds_lease = job.lease_owner is not None and job.lease_expires_at is not None
            assert holds_lease is (job.state is JobState.RUNNING)
            assert (job.finished_at is not None) is (job.state in TERMINAL_STATES)

    @invariant()
    def no_resource_has_two_backups_running(self) -> None:
        running = Counter(
            job.resource
            for job in self.service.list(states=[JobState.RUNNING], kinds=[JobKind.BACKUP])
        )
        assert all(count == 1 for count in running.values())

    def _guard(self, job: JobView) -> JobGuard:
        return JobGuard(attempt=job.attempt, lease_owner=job.lease_owner)


TestJobLifecycle = JobLifecycle.TestCase
TestJobLifecycle.settings = settings(
    max_examples=50,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

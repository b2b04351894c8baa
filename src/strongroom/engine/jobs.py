"""The job API the services layer uses: create, get, list, cancel, run, wait.

Jobs are created PENDING (through CREATED, both recorded) with the retry policy and the
partial-result setting of their rule, or the defaults. Names identify resources and
vaults; a rule is named ``plan/rule``.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog import resources as catalog_resources
from strongroom.catalog.models import Rule
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.executor import Executor
from strongroom.engine.retry import RetryPolicy
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import JobView, TransitionView, job_view, transition_view
from strongroom.errors import (
    ChangedMeanwhileError,
    ConfigError,
    ConflictError,
    IllegalTransitionError,
)

_CANCEL_TRIES = 3


class JobService:
    """Creates and controls jobs; runs them through an optional executor."""

    def __init__(
        self,
        machine: JobStateMachine,
        *,
        executor: Executor | None = None,
        default_retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.machine = machine
        self.executor = executor
        self.default_retry_policy = default_retry_policy or RetryPolicy()

    def create_job(
        self,
        kind: JobKind | str,
        resource: str | None = None,
        vault: str | None = None,
        rule: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        allow_partial: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        start_by: datetime | None = None,
        complete_by: datetime | None = None,
    ) -> str:
        """Create a PENDING job and return its id.

        ``rule`` (``plan/rule``) supplies the vault, retry policy, partial setting and
        windows (start and completion windows count from now) unless given here. Raises
        NotFoundError for an unknown resource, vault or rule, ConfigError for bad input.
        """
        job_kind = _kind(kind)
        job_id = str(uuid.uuid4())
        with self.machine.work() as work:
            session = work.session
            rule_row = _rule(session, rule) if rule is not None else None
            resource_row = (
                catalog_resources.get_resource(session, resource) if resource is not None else None
            )
            vault_row = catalog_resources.get_vault(session, vault) if vault is not None else None
            if vault_row is None and rule_row is not None:
                vault_row = rule_row.vault
            policy = retry_policy or (
                RetryPolicy.from_mapping(rule_row.retry_policy, self.default_retry_policy)
                if rule_row is not None
                else self.default_retry_policy
            )
            if rule_row is not None:
                if start_by is None and rule_row.start_window_minutes:
                    start_by = work.now + timedelta(minutes=rule_row.start_window_minutes)
                if complete_by is None and rule_row.completion_window_minutes:
                    complete_by = work.now + timedelta(minutes=rule_row.completion_window_minutes)
                if allow_partial is None:
                    allow_partial = rule_row.allow_partial
            work.create(
                job_id=job_id,
                kind=job_kind,
                max_attempts=policy.max_attempts,
                retry_interval_seconds=policy.interval_seconds,
                retry_backoff_rate=policy.backoff_rate,
                resource_id=resource_row.id if resource_row is not None else None,
                vault_id=vault_row.id if vault_row is not None else None,
                rule_id=rule_row.id if rule_row is not None else None,
                run_id=run_id,
                params=params,
                allow_partial=bool(allow_partial),
                start_by=start_by,
                complete_by=complete_by,
            )
            work.transition(job_id, JobState.PENDING, reason="queued", expected=JobState.CREATED)
        if self.executor is not None:
            self.executor.submit(job_id)
        return job_id

    def get(self, job_id: str) -> JobView:
        """Return one job; raises NotFoundError."""
        return self.machine.get(job_id)

    def list(
        self,
        *,
        states: Collection[JobState] | None = None,
        kinds: Collection[JobKind] | None = None,
        resource: str | None = None,
        vault: str | None = None,
        run_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> builtins.list[JobView]:
        """Return jobs newest first (see :func:`strongroom.catalog.jobs.list_jobs`)."""
        with self.machine.catalog.session(readonly=True) as session:
            rows = catalog_jobs.list_jobs(
                session,
                states=states,
                kinds=kinds,
                resource=resource,
                vault=vault,
                run_id=run_id,
                since=since,
                until=until,
                limit=limit,
                after=after,
            )
            return [job_view(row) for row in rows]

    def transitions(self, job_id: str) -> builtins.list[TransitionView]:
        """Return the recorded state changes of a job, oldest first."""
        with self.machine.catalog.session(readonly=True) as session:
            catalog_jobs.get_job(session, job_id)
            return [transition_view(t) for t in catalog_jobs.list_transitions(session, job_id)]

    def cancel(self, job_id: str, reason: str = "cancelled by the user") -> JobView:
        """Cancel a job: a waiting one ends ABORTED now; a running one is asked to stop.

        A RUNNING job ends ABORTED when its handler next checks its cancellation token
        (in this process at once; in another process at its next lease renewal); the job
        returned is then as it was when the request was stored (RUNNING). Raises
        IllegalTransitionError for a job that already ended, NotFoundError.
        """
        for _ in range(_CANCEL_TRIES):
            job = self.get(job_id)
            if job.is_terminal:
                raise IllegalTransitionError(f"job {job_id} already ended: {job.state}")
            if job.state is JobState.RUNNING:
                with self.machine.catalog.session() as session:
                    requested = job_view(
                        catalog_jobs.request_cancel(
                            session, job_id, at=self.machine.clock.now(), reason=reason
                        )
                    )
                if self.executor is not None:
                    self.executor.cancel_running(job_id, reason)
                return requested
            try:
                return self.machine.transition(
                    job_id,
                    JobState.ABORTED,
                    reason=reason,
                    expected=job.state,
                    changes={
                        "error_code": "Aborted",
                        "error_message": reason,
                        "error_retryable": False,
                        "cancel_requested_at": self.machine.clock.now(),
                        "cancel_reason": reason,
                    },
                )
            except IllegalTransitionError:
                raise
            except ConflictError:
                continue  # claimed or changed meanwhile: look again
        raise ChangedMeanwhileError(f"job {job_id} kept changing while being cancelled; try again")

    def run_until_idle(self, timeout: float | None = None) -> None:
        """Run queued jobs with the executor until nothing is runnable (tests, CLI)."""
        self._executor().run_until_idle(timeout)

    def wait(self, job_id: str, timeout: float | None = None) -> JobView:
        """Wait until a job ends (for ``--wait``); raises TimeoutError_."""
        return self._executor().wait(job_id, timeout)

    def _executor(self) -> Executor:
        if self.executor is None:
            raise ConfigError("this job service has no executor to run jobs with")
        return self.executor


def _kind(kind: JobKind | str) -> JobKind:
    try:
        return JobKind(kind)
    except ValueError as error:
        kinds = ", ".join(k.value for k in JobKind)
        raise ConfigError(f"unknown job kind {kind!r}; expected one of {kinds}") from error


def _rule(session: Session, rule: str) -> Rule:
    plan, separator, name = rule.partition("/")
    if not separator or not plan or not name:
        raise ConfigError(f"name a rule as plan/rule, not {rule!r}")
    return catalog_resources.get_rule(session, plan, name)

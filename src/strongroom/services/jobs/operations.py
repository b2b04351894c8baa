"""On-demand jobs and what they left behind: start, run, watch, list, describe, cancel.

``start_backup``, ``start_restore`` and ``start_verify`` queue a job (PENDING in the
catalog). Who runs it:

* the daemon (``strongroom serve``), which registers :func:`strongroom.services.jobs.handlers.handlers`;
* or this process, with :meth:`OperationsService.run` (the CLI's ``--wait``): it becomes a
  one-worker executor for that one job until it ends, retrying per the job's policy on
  the real clock. It never claims another job: older queued jobs stay for the daemon.
  The concurrency limits ``apply`` stored hold for it as for the daemon, so it waits
  while they are full. Where a daemon runs as well, whichever claims the job runs it and
  ``run`` follows it to its end.

A resource never has two backups at once: the engine never claims a second one, and
``start_backup`` refuses to queue one while another is queued or running
(``ConflictError`` naming that job).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog.models import Job
from strongroom.catalog.models import RecoveryPoint as PointRow
from strongroom.catalog.points import list_recovery_points
from strongroom.catalog.resources import get_resource, get_rule, list_plans
from strongroom.catalog.types import JobKind, JobState, PointState
from strongroom.engine.events import EventBus
from strongroom.engine.executor import ThreadPoolJobExecutor
from strongroom.engine.jobs import JobService
from strongroom.engine.retry import RetryPolicy
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import JobView
from strongroom.errors import (
    BusyError,
    ConfigError,
    NotFoundError,
    StrongroomError,
    TimeoutError_,
)
from strongroom.services.audit.trail import record_alone, record_refusal
from strongroom.services.context import AppContext
from strongroom.services.declare.records import selection_models
from strongroom.services.declare.resources import resource_config
from strongroom.services.jobs.handlers import handlers
from strongroom.services.jobs.views import JobDescription, PointView, point_view
from strongroom.sources import entry_for

MIN_PREFIX: Final = 6
"""Shortest id prefix accepted for a job or a recovery point."""
EXIT_ABORTED: Final = 130
EXIT_EXPIRED: Final = 124
_ACTIVE: Final = (JobState.CREATED, JobState.PENDING, JobState.RUNNING)

JobWatcher = Callable[[JobView], None]
"""Called with the job as it is now, about twice a second while :meth:`run` waits."""


@dataclass(frozen=True)
class Outcome:
    """What the end of a job means for a caller: exit code, one line, a hint."""

    exit_code: int
    message: str
    hint: str = ""
    warning: bool = False


class OperationsService:
    """The operations of ``start-backup``, ``restore``, ``verify``, ``list-…``, ``describe-job``."""

    def __init__(self, context: AppContext, *, bus: EventBus | None = None) -> None:
        self.context = context
        self.bus = bus or EventBus(context.catalog, context.clock)
        self.machine = JobStateMachine(context.catalog, self.bus, context.clock)
        self.jobs = JobService(self.machine)

    # --- starting jobs ---------------------------------------------------------------------

    def start_backup(
        self,
        resource: str,
        vault: str | None = None,
        rule: str | None = None,
        *,
        retry: Mapping[str, Any] | None = None,
    ) -> JobView:
        """Queue a backup of ``resource`` into ``vault`` (or the vault of ``rule``).

        The rule (``plan/rule``) also gives the retry policy, windows, recovery-point tags,
        lifecycle and whether a partial result is kept; ``retry`` (``max_attempts``,
        ``interval_seconds``, ``backoff_rate``) overrides fields of its retry policy. Without
        a vault or rule, the one rule whose plan selects the resource is used. Raises
        ``ConfigError`` when no rule or several rules select it, ``NotFoundError`` for an
        unknown resource, vault or rule, ``UnsupportedError`` for a type without a source,
        ``ConflictError`` while another backup of the resource is queued or running.
        """
        try:
            with self.context.catalog.session(readonly=True) as session:
                model = resource_config(session, resource)
                if vault is None and rule is None:
                    rule = _only_rule_selecting(session, resource)
            entry_for(model.type, resource=resource)  # refuses a type without a source
            busy = self.jobs.list(
                states=_ACTIVE, kinds=[JobKind.BACKUP], resource=resource, limit=1
            )
            if busy:
                other = busy[0]
                raise BusyError(
                    f"a backup of {resource!r} is already {other.state.value}: job {other.id}",
                    hint=f"Wait for it ('strongroom describe-job {other.id}') or cancel it "
                    f"('strongroom cancel-job {other.id}').",
                )
            job_id = self.jobs.create_job(
                JobKind.BACKUP,
                resource=resource,
                vault=vault,
                rule=rule,
                params={"trigger": "on-demand"},
                retry_policy=self.retry_policy(rule, retry),
            )
        except StrongroomError as error:
            record_refusal(
                self.context,
                action="backup.start",
                subject=resource,
                error=error,
                details={"vault": vault, "rule": rule},
            )
            raise
        return self._started("backup.start", job_id)

    def start_restore(
        self,
        point_id: str,
        target: Mapping[str, Any],
        *,
        retry: Mapping[str, Any] | None = None,
    ) -> JobView:
        """Queue a restore of a recovery point (full id or unique prefix) into ``target``.

        ``target`` holds the source's restore options (files: ``path`` or ``original``;
        sqlite: ``path``; postgres: ``database``, ``databases`` …), checked here against
        the restore-target model of the resource's source. Raises ``NotFoundError``,
        ``ConfigError`` for a deleted point or a bad target (naming the allowed keys),
        ``UnsupportedError`` for a type without a source.
        """
        try:
            point = self.point(point_id)
            if point.state is PointState.DELETED:
                raise ConfigError(f"recovery point {point.id} was deleted; its data is gone")
            with self.context.catalog.session(readonly=True) as session:
                model = resource_config(session, point.resource)
            entry_for(model.type, resource=point.resource).parse_target(target)
            job_id = self.jobs.create_job(
                JobKind.RESTORE,
                resource=point.resource,
                vault=point.vault,
                params={"point_id": point.id, "target": dict(target)},
                retry_policy=self.retry_policy(None, retry),
            )
        except StrongroomError as error:
            record_refusal(self.context, action="restore.start", subject=point_id, error=error)
            raise
        return self._started("restore.start", job_id)

    def start_verify(
        self,
        point_id: str | None = None,
        vault: str | None = None,
        *,
        read_data: bool = False,
        restore_test: bool = False,
        retry: Mapping[str, Any] | None = None,
    ) -> JobView:
        """Queue a verify of one recovery point, or of a whole vault.

        ``read_data`` reads and checks every stored byte; ``restore_test`` also restores
        into a scratch target and compares with what the backup recorded (for a vault:
        the newest point of each resource). Raises ``ConfigError`` unless exactly one of
        ``point_id`` and ``vault`` is given, ``NotFoundError``.
        """
        if (point_id is None) == (vault is None):
            raise ConfigError("verify one recovery point (POINT) or a whole vault (--vault V)")
        resource = None
        try:
            if point_id is not None:
                point = self.point(point_id)
                point_id, vault, resource = point.id, point.vault, point.resource
            job_id = self.jobs.create_job(
                JobKind.VERIFY,
                resource=resource,
                vault=vault,
                params={
                    "point_id": point_id,
                    "read_data": read_data,
                    "restore_test": restore_test,
                },
                retry_policy=self.retry_policy(None, retry),
            )
        except StrongroomError as error:
            record_refusal(
                self.context, action="verify.start", subject=str(point_id or vault), error=error
            )
            raise
        return self._started("verify.start", job_id)

    def _started(self, action: str, job_id: str) -> JobView:
        """Record that ``action`` queued job ``job_id`` and return the job."""
        job = self.jobs.get(job_id)
        record_alone(
            self.context,
            action=action,
            subject=job_id,
            outcome="succeeded",
            details={
                "job_id": job_id,
                "resource": job.resource,
                "vault": job.vault,
                "rule": job.rule,
                "params": dict(job.params or {}),
            },
        )
        return job

    def retry_policy(self, rule: str | None, retry: Mapping[str, Any] | None) -> RetryPolicy | None:
        """The policy with ``retry``'s fields over the rule's (or the defaults); None: unchanged.

        Raises ``ConfigError`` for unknown or invalid fields, ``NotFoundError``.
        """
        if not retry:
            return None
        base = self.jobs.default_retry_policy
        if rule is not None:
            plan, separator, name = rule.partition("/")
            if not separator or not plan or not name:
                raise ConfigError(f"name a rule as plan/rule, not {rule!r}")
            with self.context.catalog.session(readonly=True) as session:
                base = RetryPolicy.from_mapping(get_rule(session, plan, name).retry_policy, base)
        return RetryPolicy.from_mapping(retry, base)

    # --- running and following jobs ------------------------------------------------------

    def run(
        self, job_id: str, *, on_update: JobWatcher | None = None, poll_interval: float = 0.5
    ) -> JobView:
        """Run job ``job_id`` in this process until it ends; return it as it ended.

        A one-worker executor with every handler claims this job only (never an older
        queued one) when the catalog's concurrency limits allow, renews its lease every
        second and retries per the job's policy on the context's clock. ``on_update`` sees the job about every
        ``poll_interval`` seconds. An interrupt (Ctrl-C) cancels what runs here: the job
        ends ABORTED and its partial data is discarded.
        """
        full_id = self.resolve_job_id(job_id)
        executor = ThreadPoolJobExecutor(
            self.machine,
            handlers(self.context),
            only=[full_id],
            max_workers=1,
            heartbeat_interval=1.0,
            poll_interval=poll_interval,
        )
        try:
            while True:
                job = self.machine.get(full_id)
                if on_update is not None:
                    on_update(job)
                if job.is_terminal:
                    return job
                executor.run_once()
                with suppress(TimeoutError_):
                    executor.wait(full_id, timeout=poll_interval)
        except KeyboardInterrupt:
            executor.cancel_running(full_id, "interrupted (Ctrl-C) while it ran in the foreground")
            raise
        finally:
            executor.shutdown(wait=True, cancel=True)

    def cancel_job(self, job_id: str, reason: str = "cancelled by the user") -> JobView:
        """Cancel a job: a queued one ends ABORTED now; a running one is asked to stop.

        Raises ``IllegalTransitionError`` for a job that already ended, ``NotFoundError``.
        """
        full_id = self.resolve_job_id(job_id)
        action = f"{self.jobs.get(full_id).kind.value}.cancel"
        try:
            job = self.jobs.cancel(full_id, reason)
        except StrongroomError as error:
            record_refusal(self.context, action=action, subject=full_id, error=error)
            raise
        record_alone(
            self.context,
            action=action,
            subject=full_id,
            outcome="succeeded",
            reason=reason,
            details={"job_id": full_id, "state": job.state.value},
        )
        return job

    # --- reading ---------------------------------------------------------------------------

    def describe_job(self, job_id: str) -> JobDescription:
        """One job (full id or unique prefix) with its recorded transitions."""
        full_id = self.resolve_job_id(job_id)
        return JobDescription(self.jobs.get(full_id), self.jobs.transitions(full_id))

    def list_jobs(
        self,
        *,
        kinds: Collection[JobKind] | None = None,
        states: Collection[JobState] | None = None,
        resource: str | None = None,
        vault: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> builtins.list[JobView]:
        """Jobs newest first, by kind, state, resource, vault and creation time; ``after``
        (creation time and id of the previous page's last job) pages by keyset."""
        return self.jobs.list(
            kinds=kinds,
            states=states,
            resource=resource,
            vault=vault,
            since=since,
            limit=limit,
            after=after,
        )

    def list_backups(
        self,
        *,
        states: Collection[JobState] | None = None,
        resource: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[JobView]:
        """Backup jobs newest first, by state, resource and creation time."""
        return self.list_jobs(
            kinds=[JobKind.BACKUP], states=states, resource=resource, since=since, limit=limit
        )

    def list_recovery_points(
        self,
        *,
        vault: str | None = None,
        resource: str | None = None,
        states: Collection[PointState] | None = None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> builtins.list[PointView]:
        """Recovery points the catalog records, newest first; ``after`` (creation time and
        id of the previous page's last point) pages by keyset."""
        with self.context.catalog.session(readonly=True) as session:
            rows = list_recovery_points(
                session, vault=vault, resource=resource, states=states, limit=limit, after=after
            )
            return [point_view(row) for row in rows]

    def point(self, point_id: str) -> PointView:
        """One recovery point by full id or unique prefix (at least 6 characters)."""
        with self.context.catalog.session(readonly=True) as session:
            full_id = _resolve(session, PointRow.id, point_id, "recovery point")
            row = session.get(PointRow, full_id)
            if row is None:  # pragma: no cover - resolved just above
                raise NotFoundError(f"no recovery point {point_id!r} in the catalog")
            return point_view(row)

    def resolve_job_id(self, job_id: str) -> str:
        """Return the full id of a job given by full id or unique prefix."""
        with self.context.catalog.session(readonly=True) as session:
            return _resolve(session, Job.id, job_id, "job")


def _resolve(session: Any, column: Any, given: str, what: str) -> str:
    value = given.strip().lower()
    exact = session.scalar(select(column).where(column == value))
    if exact is not None:
        return str(exact)
    hint = {
        "job": "List jobs with 'strongroom list-backups' or 'strongroom report detailed'.",
        "recovery point": "List them with 'strongroom list-recovery-points'; points missing "
        "from the catalog are found again by 'strongroom catalog rebuild'.",
    }[what]
    if len(value) >= MIN_PREFIX:
        found = list(session.scalars(select(column).where(column.startswith(value)).limit(2)))
        if len(found) == 1:
            return str(found[0])
        if len(found) > 1:
            raise ConfigError(f"{what} id prefix {given!r} is ambiguous; give more of it")
    raise NotFoundError(f"no {what} {given!r} in the catalog", hint=hint)


# --- what a job's end means -------------------------------------------------------------------


def _error_classes() -> dict[str, type[StrongroomError]]:
    classes: dict[str, type[StrongroomError]] = {}
    pending: list[type[StrongroomError]] = [StrongroomError]
    while pending:
        current = pending.pop()
        classes.setdefault(current.code, current)
        pending.extend(current.__subclasses__())
    return classes


def error_class_of(code: str | None) -> type[StrongroomError]:
    """The error class a job's recorded error code names (StrongroomError when unknown)."""
    return _error_classes().get(code or "", StrongroomError)


def outcome(job: JobView) -> Outcome:
    """Tell what a finished job means for the caller, and the exit code ``--wait`` uses.

    COMPLETED: 0. PARTIAL: 0 with a warning (the rule allows partial results, so the
    result is kept as policy says). FAILED: the exit code of the job's error class (as
    any other command failing with that error: 6 for damaged data, 3 for something not
    found …; 1 for an unexpected error). ABORTED (cancelled, or its completion window
    closed): 130. EXPIRED (not started within its start window): 124.
    """
    label = f"{job.kind.value} job {job.id}"
    error = job.error
    if job.state is JobState.COMPLETED:
        return Outcome(0, f"{label} COMPLETED")
    if job.state is JobState.PARTIAL:
        message = (job.result or {}).get("failed_parts") or {}
        detail = ", ".join(sorted(message)) if isinstance(message, Mapping) else ""
        return Outcome(
            0,
            f"{label} is PARTIAL: some parts failed" + (f" ({detail})" if detail else ""),
            "The rule allows partial results; the parts that worked form the recovery point.",
            warning=True,
        )
    if job.state is JobState.ABORTED:
        return Outcome(
            EXIT_ABORTED, f"{label} was ABORTED: {error.message if error else 'cancelled'}"
        )
    if job.state is JobState.EXPIRED:
        return Outcome(
            EXIT_EXPIRED,
            f"{label} EXPIRED: {error.message if error else 'it did not start in its window'}",
            "No worker started it within its start window: is the daemon running? Widen the "
            "rule's start window if workers are busy.",
        )
    if job.state is JobState.FAILED:
        error_class = _error_classes().get(error.code if error else "", StrongroomError)
        code = error.code if error else "Unknown"
        text = error.message if error else "no error was recorded"
        attempts = f"'strongroom describe-job {job.id}' shows every attempt."
        hint = (
            f"Each of the {job.attempt} attempts failed; fix the cause and start it again. "
            + attempts
            if error is not None and error.retryable
            else error_class.default_hint or attempts
        )
        return Outcome(
            error_class.exit_code,
            f"{label} FAILED after {job.attempt} attempt(s): {code}: {text}",
            hint,
        )
    raise ValueError(f"{label} has not ended: {job.state.value}")


def _only_rule_selecting(session: Session, resource: str) -> str:
    """Return ``plan/rule`` of the one rule whose plan selects ``resource``; raises
    ConfigError naming the candidates when there are none or several."""
    row = get_resource(session, resource)
    tags = {str(key): str(value) for key, value in row.tags.items()}
    rules = sorted(
        f"{plan.name}/{rule.name}"
        for plan in list_plans(session)
        if any(selection.selects(row.name, row.type, tags) for selection in selection_models(plan))
        for rule in plan.rules
    )
    if len(rules) == 1:
        return rules[0]
    if not rules:
        raise ConfigError(
            f"no plan selects {resource!r}: name the vault to back it up into",
            hint="Give --vault NAME, or --rule PLAN/RULE to use a rule's vault and settings.",
        )
    raise ConfigError(
        f"{len(rules)} rules select {resource!r}: {', '.join(rules)}; name one",
        hint="Give --rule PLAN/RULE (or --vault NAME for a backup outside every plan).",
    )

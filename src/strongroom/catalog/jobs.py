"""Jobs in the catalog: create, change state with an optimistic check, claim with a lease.

Every function takes an open :class:`~sqlalchemy.orm.Session` (one transaction from
:meth:`Catalog.session`) and the current time from the caller's clock. These functions
know which columns change and how to stay correct when several processes share the
catalog; *which* state may follow which is decided by ``strongroom.engine.states``.

Claims are serialised: on SQLite the session's ``BEGIN IMMEDIATE`` holds the write lock;
on PostgreSQL a transaction-scoped advisory lock is taken first and candidates are read
``FOR UPDATE SKIP LOCKED``. Under that lock the running counts that the concurrency
limits check cannot change, and a partial unique index refuses a second RUNNING backup
of one resource whatever happens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, Select, and_, exists, func, insert, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session, aliased, joinedload

from strongroom.catalog.models import Job, JobTransition, Resource, Rule, Vault
from strongroom.catalog.settings import ConcurrencyLimits as ConcurrencyLimits
from strongroom.catalog.settings import read_concurrency_limits
from strongroom.catalog.types import JobKind, JobState
from strongroom.errors import ChangedMeanwhileError, ConflictError, NotFoundError

CLAIM_LOCK_KEY: Final = 0x5352434C  # "SRCL": strongroom claims
"""PostgreSQL advisory lock key held by a claiming transaction."""

_CHANGEABLE: Final = frozenset(Job.__table__.columns.keys()) - {"id", "state", "updated_at"}
_CLAIM_TRIES: Final = 8


@dataclass(frozen=True)
class JobGuard:
    """Extra conditions a transition checks besides the current state.

    A worker passes its ``lease_owner`` and ``attempt`` so that it cannot finish a job
    that was taken from it (lease expired) and handed to another worker;
    ``lease_expired_by`` lets a recovery move a job only if its lease is really over.
    """

    attempt: int | None = None
    lease_owner: str | None = None
    lease_expired_by: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """Return the SQL conditions of this guard."""
        conditions: list[ColumnElement[bool]] = []
        if self.attempt is not None:
            conditions.append(Job.attempt == self.attempt)
        if self.lease_owner is not None:
            conditions.append(Job.lease_owner == self.lease_owner)
        if self.lease_expired_by is not None:
            conditions.append(Job.lease_expires_at <= self.lease_expired_by)
        return conditions


@dataclass(frozen=True)
class LeaseStatus:
    """What a lease renewal found: whether the lease still holds, and any cancel request."""

    renewed: bool
    cancel_requested: bool = False
    cancel_reason: str | None = None
    complete_by: datetime | None = None


def create_job(
    session: Session,
    *,
    job_id: str,
    kind: JobKind,
    at: datetime,
    max_attempts: int,
    retry_interval_seconds: float,
    retry_backoff_rate: float,
    resource_id: int | None = None,
    vault_id: int | None = None,
    rule_id: int | None = None,
    run_id: str | None = None,
    params: Mapping[str, Any] | None = None,
    allow_partial: bool = False,
    start_by: datetime | None = None,
    complete_by: datetime | None = None,
    reason: str = "created",
) -> Job:
    """Insert a job in state CREATED (attempt 1) and record that first transition."""
    job = Job(
        id=job_id,
        kind=kind,
        state=JobState.CREATED,
        resource_id=resource_id,
        vault_id=vault_id,
        rule_id=rule_id,
        run_id=run_id,
        params=dict(params or {}),
        allow_partial=allow_partial,
        attempt=1,
        max_attempts=max_attempts,
        retry_interval_seconds=retry_interval_seconds,
        retry_backoff_rate=retry_backoff_rate,
        start_by=start_by,
        complete_by=complete_by,
        created_at=at,
        updated_at=at,
    )
    session.add(job)
    session.flush()
    record_transition(session, job, None, JobState.CREATED, at=at, reason=reason)
    return job


def insert_pending_jobs(
    session: Session,
    jobs: Sequence[Mapping[str, Any]],
    *,
    at: datetime,
    created_reason: str = "created",
    queued_reason: str = "queued",
) -> None:
    """Insert many jobs straight into PENDING, with the two transitions that
    :func:`create_job` and a CREATED -> PENDING :func:`transition_job` would record.

    Each mapping holds the columns ``create_job`` takes (``id``, ``kind``, ``resource_id``,
    ``vault_id``, ``rule_id``, ``run_id``, ``params``, ``allow_partial``,
    ``max_attempts``, ``retry_interval_seconds``, ``retry_backoff_rate``, ``start_by``,
    ``complete_by``). One statement per table, for the scheduler's runs of many jobs.
    """
    if not jobs:
        return
    # Core inserts (the tables, not the classes): one executemany each, no ORM identity work.
    session.execute(
        insert(Job.metadata.tables[Job.__tablename__]),
        [
            {
                **{column: job.get(column) for column in _NEW_JOB_COLUMNS},
                "params": dict(job.get("params") or {}),
                "allow_partial": bool(job.get("allow_partial")),
                "state": JobState.PENDING,
                "attempt": 1,
                "created_at": at,
                "updated_at": at,
            }
            for job in jobs
        ],
    )
    session.execute(
        insert(JobTransition.metadata.tables[JobTransition.__tablename__]),
        [
            {
                "job_id": job["id"],
                "from_state": from_state,
                "to_state": to_state,
                "at": at,
                "reason": reason,
                "attempt": 1,
            }
            for job in jobs
            for from_state, to_state, reason in (
                (None, JobState.CREATED, created_reason),
                (JobState.CREATED, JobState.PENDING, queued_reason),
            )
        ],
    )


_NEW_JOB_COLUMNS: Final = (
    "id",
    "kind",
    "resource_id",
    "vault_id",
    "rule_id",
    "run_id",
    "max_attempts",
    "retry_interval_seconds",
    "retry_backoff_rate",
    "start_by",
    "complete_by",
)


def get_job(session: Session, job_id: str) -> Job:
    """Return one job, read fresh from the database; raises NotFoundError."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFoundError(f"no job {job_id!r} in the catalog")
    return job


def transition_job(
    session: Session,
    job_id: str,
    *,
    from_state: JobState,
    to_state: JobState,
    at: datetime,
    reason: str,
    guard: JobGuard | None = None,
    changes: Mapping[str, Any] | None = None,
) -> Job:
    """Move a job from ``from_state`` to ``to_state`` if it is still there, and record it.

    The update is ``UPDATE jobs … WHERE id = ? AND state = ?`` (plus the guard's
    conditions), so of two concurrent callers exactly one wins. ``changes`` sets other
    columns in the same statement. Raises ChangedMeanwhileError (retryable) when the job was no
    longer in ``from_state`` or the guard failed, NotFoundError when there is no such job.
    """
    values = dict(changes or {})
    unknown = set(values) - _CHANGEABLE
    if unknown:
        raise ValueError(f"not changeable job columns: {sorted(unknown)}")
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.state == from_state, *(guard or JobGuard()).conditions())
        .values(state=to_state, updated_at=at, **values)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(session.execute(statement)) != 1:
        current = session.get(Job, job_id, populate_existing=True)
        if current is None:
            raise NotFoundError(f"no job {job_id!r} in the catalog")
        raise ChangedMeanwhileError(
            f"job {job_id} is {current.state} (attempt {current.attempt}, lease "
            f"{current.lease_owner or 'none'}), not {from_state} as expected for "
            f"{from_state} -> {to_state}; someone else changed it first"
        )
    job = get_job(session, job_id)
    record_transition(session, job, from_state, to_state, at=at, reason=reason)
    return job


def record_transition(
    session: Session,
    job: Job,
    from_state: JobState | None,
    to_state: JobState,
    *,
    at: datetime,
    reason: str,
) -> JobTransition:
    """Append one row to the job's transition history."""
    transition = JobTransition(
        job_id=job.id,
        from_state=from_state,
        to_state=to_state,
        at=at,
        reason=reason,
        attempt=job.attempt,
    )
    session.add(transition)
    session.flush()
    return transition


def list_transitions(session: Session, job_id: str) -> list[JobTransition]:
    """Return a job's transitions, oldest first."""
    statement = (
        select(JobTransition).where(JobTransition.job_id == job_id).order_by(JobTransition.id)
    )
    return list(session.scalars(statement))


def claim_next_job(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    kinds: Collection[JobKind],
    limits: ConcurrencyLimits | None = None,
    only: Collection[str] | None = None,
) -> Job | None:
    """Take the oldest runnable PENDING job the limits allow: RUNNING, leased to ``owner``.

    Runnable means its ``next_attempt_at`` has come, its ``start_by`` has not passed, its
    kind is one of ``kinds``, its id is one of ``only`` (when given), and — for a backup —
    its resource has no backup RUNNING. ``limits`` ``None`` means the limits ``apply``
    stored in the catalog (:mod:`~strongroom.catalog.settings`; none if it stored none),
    read under the claim lock. Returns ``None`` when nothing may run now. The transition
    PENDING -> RUNNING is recorded in the same transaction.
    """
    if not kinds or (only is not None and not only):
        return None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
    if limits is None:
        limits = read_concurrency_limits(session) or ConcurrencyLimits()
    total, by_vault, by_type = _running_counts(session)
    if limits.max_running is not None and total >= limits.max_running:
        return None
    full_vaults = [
        name for name, count in by_vault.items() if _at_limit(limits.vault_limit(name), count)
    ]
    full_types = [
        kind
        for kind, count in by_type.items()
        if _at_limit(limits.resource_type_limit(kind), count)
    ]
    for _ in range(_CLAIM_TRIES):
        candidate = session.scalar(_candidates(now, kinds, full_vaults, full_types, only).limit(1))
        if candidate is None:
            return None
        try:
            with session.begin_nested():
                return transition_job(
                    session,
                    candidate,
                    from_state=JobState.PENDING,
                    to_state=JobState.RUNNING,
                    at=now,
                    reason=f"claimed by {owner}",
                    changes={
                        "lease_owner": owner,
                        "lease_expires_at": now + timedelta(seconds=lease_seconds),
                        "started_at": now,
                        "next_attempt_at": None,
                        "progress": None,
                    },
                )
        except (ConflictError, sa_exc.IntegrityError):
            # Changed under us (cancelled) or refused by the one-backup index: try the next.
            continue
    return None


def _rowcount(result: Result[Any]) -> int:
    # UPDATE statements return a cursor result; the generic Result type does not say so.
    return cast(CursorResult[Any], result).rowcount


def _at_limit(limit: int | None, count: int) -> bool:
    return limit is not None and count >= limit


def _running_counts(session: Session) -> tuple[int, Counter[str], Counter[str]]:
    statement = (
        select(Vault.name, Resource.type, func.count())
        .select_from(Job)
        .outerjoin(Vault, Job.vault_id == Vault.id)
        .outerjoin(Resource, Job.resource_id == Resource.id)
        .where(Job.state == JobState.RUNNING)
        .group_by(Vault.name, Resource.type)
    )
    total = 0
    by_vault: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for vault, resource_type, count in session.execute(statement):
        total += count
        if vault is not None:
            by_vault[vault] += count
        if resource_type is not None:
            by_type[resource_type] += count
    return total, by_vault, by_type


def _candidates(
    now: datetime,
    kinds: Collection[JobKind],
    full_vaults: Sequence[str],
    full_types: Sequence[str],
    only: Collection[str] | None,
) -> Select[str]:
    running_backup = aliased(Job)
    busy_resource = exists().where(
        running_backup.resource_id == Job.resource_id,
        running_backup.kind == JobKind.BACKUP,
        running_backup.state == JobState.RUNNING,
    )
    conditions: list[ColumnElement[bool]] = [
        Job.state == JobState.PENDING,
        Job.kind.in_(list(kinds)),
        or_(Job.next_attempt_at.is_(None), Job.next_attempt_at <= now),
        or_(Job.start_by.is_(None), Job.start_by > now),
        or_(Job.kind != JobKind.BACKUP, Job.resource_id.is_(None), ~busy_resource),
    ]
    if only is not None:
        conditions.append(Job.id.in_(list(only)))
    if full_vaults:
        conditions.append(or_(Job.vault_id.is_(None), Vault.name.not_in(full_vaults)))
    if full_types:
        conditions.append(or_(Job.resource_id.is_(None), Resource.type.not_in(full_types)))
    return (
        select(Job.id)
        .outerjoin(Vault, Job.vault_id == Vault.id)
        .outerjoin(Resource, Job.resource_id == Resource.id)
        .where(and_(*conditions))
        .order_by(Job.created_at, Job.id)
        .with_for_update(skip_locked=True, of=Job)
    )


def renew_lease(
    session: Session,
    job_id: str,
    *,
    owner: str,
    attempt: int,
    now: datetime,
    lease_seconds: float,
    progress: Mapping[str, Any] | None = None,
) -> LeaseStatus:
    """Extend ``owner``'s lease on a RUNNING job and store its latest progress.

    Returns ``renewed=False`` when the lease is no longer this worker's (it expired and
    the job was recovered, or the job finished); the worker must then stop. A cancel
    request made from another process is reported so the worker can act on it.
    """
    values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=lease_seconds)}
    if progress is not None:
        values["progress"] = dict(progress)
    statement = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.state == JobState.RUNNING,
            Job.lease_owner == owner,
            Job.attempt == attempt,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(session.execute(statement)) != 1:
        return LeaseStatus(renewed=False)
    job = get_job(session, job_id)
    return LeaseStatus(
        renewed=True,
        cancel_requested=job.cancel_requested_at is not None,
        cancel_reason=job.cancel_reason,
        complete_by=job.complete_by,
    )


def list_expired_leases(session: Session, *, now: datetime, limit: int = 100) -> list[Job]:
    """Return RUNNING jobs whose lease ran out by ``now`` (their worker is presumed dead)."""
    statement = (
        select(Job)
        .where(Job.state == JobState.RUNNING, Job.lease_expires_at <= now)
        .order_by(Job.lease_expires_at)
        .limit(limit)
    )
    return list(session.scalars(statement))


def list_missed_start(session: Session, *, now: datetime, limit: int = 100) -> list[Job]:
    """Return CREATED or PENDING jobs whose start window closed (``start_by`` passed)."""
    statement = (
        select(Job)
        .where(
            Job.state.in_([JobState.CREATED, JobState.PENDING]),
            Job.start_by.is_not(None),
            Job.start_by <= now,
        )
        .order_by(Job.start_by)
        .limit(limit)
    )
    return list(session.scalars(statement))


def list_overdue_running(session: Session, *, now: datetime, limit: int = 100) -> list[Job]:
    """Return RUNNING jobs whose completion window closed (``complete_by`` passed) and
    that nobody has asked to stop yet."""
    statement = (
        select(Job)
        .where(
            Job.state == JobState.RUNNING,
            Job.complete_by.is_not(None),
            Job.complete_by <= now,
            Job.cancel_requested_at.is_(None),
        )
        .order_by(Job.complete_by)
        .limit(limit)
    )
    return list(session.scalars(statement))


def request_cancel(session: Session, job_id: str, *, at: datetime, reason: str) -> Job:
    """Mark a job as asked to stop; its worker sees it at the next lease renewal."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.cancel_requested_at.is_(None))
        .values(cancel_requested_at=at, cancel_reason=reason)
        .execution_options(synchronize_session=False)
    )
    session.execute(statement)
    return get_job(session, job_id)


def list_jobs(
    session: Session,
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
) -> list[Job]:
    """Return jobs newest first, filtered by state, kind, resource or vault name, run and
    creation time (``since`` inclusive, ``until`` exclusive); ``after`` (the creation time
    and id of the last job of the previous page) starts after that job (keyset paging)."""
    statement = select(Job)
    if after is not None:
        created_at, job_id = after
        # The range on created_at alone lets the database seek its index.
        statement = statement.where(
            Job.created_at <= created_at, or_(Job.created_at < created_at, Job.id < job_id)
        )
    if states is not None:
        statement = statement.where(Job.state.in_(list(states)))
    if kinds is not None:
        statement = statement.where(Job.kind.in_(list(kinds)))
    if resource is not None:
        statement = statement.join(Resource, Job.resource_id == Resource.id).where(
            Resource.name == resource
        )
    if vault is not None:
        statement = statement.join(Vault, Job.vault_id == Vault.id).where(Vault.name == vault)
    if run_id is not None:
        statement = statement.where(Job.run_id == run_id)
    if since is not None:
        statement = statement.where(Job.created_at >= since)
    if until is not None:
        statement = statement.where(Job.created_at < until)
    statement = statement.order_by(Job.created_at.desc(), Job.id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    # A job's view names its resource, vault and plan/rule: one query, not one per job.
    statement = statement.options(
        joinedload(Job.resource), joinedload(Job.vault), joinedload(Job.rule).joinedload(Rule.plan)
    )
    return list(session.scalars(statement))


def count_running(session: Session) -> int:
    """Return how many jobs are RUNNING in the whole catalog."""
    statement = select(func.count()).select_from(Job).where(Job.state == JobState.RUNNING)
    return int(session.scalar(statement) or 0)

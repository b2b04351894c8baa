"""Runs in the catalog: one firing of a rule (or of rules merged at one instant).

A run is RUNNING from the moment it is created until every job it started has ended;
then it is finished once, with a conditional update, and keeps its summary. Each function
takes an open session and the time from the caller's clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, selectinload

from strongroom.catalog.jobs import _rowcount as rowcount
from strongroom.catalog.models import Job, Plan, RecoveryPoint, Rule, Run
from strongroom.catalog.types import JobKind, JobState
from strongroom.errors import NotFoundError

ACTIVE_STATES: Final = (JobState.CREATED, JobState.PENDING, JobState.RUNNING)
"""States of a job that has not ended."""


def create_run(
    session: Session,
    *,
    run_id: str,
    plan_id: int | None,
    rule_id: int | None,
    fired_at: datetime,
    summary: Mapping[str, Any],
) -> Run:
    """Insert a RUNNING run and return it."""
    run = Run(
        id=run_id,
        plan_id=plan_id,
        rule_id=rule_id,
        fired_at=fired_at,
        finished_at=None,
        state=JobState.RUNNING,
        summary=dict(summary),
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: str) -> Run:
    """Return one run, read fresh; raises NotFoundError."""
    run = session.get(Run, run_id, populate_existing=True)
    if run is None:
        raise NotFoundError(f"no run {run_id!r} in the catalog")
    return run


def list_runs(
    session: Session,
    *,
    plan: str | None = None,
    rule: str | None = None,
    states: Collection[JobState] | None = None,
    limit: int | None = None,
) -> list[Run]:
    """Return runs newest first, filtered by plan name, rule name and state."""
    statement = select(Run)
    if plan is not None:
        statement = statement.join(Plan, Run.plan_id == Plan.id).where(Plan.name == plan)
    if rule is not None:
        statement = statement.join(Rule, Run.rule_id == Rule.id).where(Rule.name == rule)
    if states is not None:
        statement = statement.where(Run.state.in_(list(states)))
    statement = statement.order_by(Run.fired_at.desc(), Run.id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement))


def list_ended_runs(session: Session, *, limit: int = 100) -> list[Run]:
    """Return RUNNING runs none of whose jobs is still waiting or running."""
    unfinished = exists().where(Job.run_id == Run.id, Job.state.in_(ACTIVE_STATES))
    statement = (
        select(Run)
        .where(Run.state == JobState.RUNNING, ~unfinished)
        .order_by(Run.fired_at, Run.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def run_jobs(session: Session, run_id: str) -> list[Job]:
    """Return the jobs of a run (their resources loaded), oldest first."""
    statement = (
        select(Job)
        .where(Job.run_id == run_id)
        .options(selectinload(Job.resource))
        .order_by(Job.created_at, Job.id)
    )
    return list(session.scalars(statement))


def points_of_jobs(session: Session, job_ids: Collection[str]) -> dict[str, RecoveryPoint]:
    """Return the recovery points the given jobs made, by job id."""
    if not job_ids:
        return {}
    statement = select(RecoveryPoint).where(RecoveryPoint.job_id.in_(list(job_ids)))
    return {point.job_id: point for point in session.scalars(statement) if point.job_id}


def finish_run(
    session: Session,
    run_id: str,
    *,
    state: JobState,
    at: datetime,
    summary: Mapping[str, Any],
) -> bool:
    """End a RUNNING run with its state and summary; False if it already ended."""
    statement = (
        update(Run)
        .where(Run.id == run_id, Run.state == JobState.RUNNING)
        .values(state=state, finished_at=at, summary=dict(summary))
        .execution_options(synchronize_session=False)
    )
    return rowcount(session.execute(statement)) == 1


def active_backups(session: Session, rule_ids: Collection[int]) -> dict[int, str]:
    """Return, by resource id, a backup job of one of ``rule_ids`` that has not ended."""
    if not rule_ids:
        return {}
    statement = select(Job.resource_id, Job.id).where(
        Job.state.in_(ACTIVE_STATES),
        Job.kind == JobKind.BACKUP,
        Job.rule_id.in_(list(rule_ids)),
        Job.resource_id.is_not(None),
    )
    return {int(row.resource_id): row.id for row in session.execute(statement)}

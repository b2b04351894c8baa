"""Pruning old job history: the job events and the transition trail of long-ended jobs.

A backup job leaves about a dozen rows besides itself: a transition per state change and
two events per transition (``{kind}.job.state_changed`` and its own). At thousands of
resources that is most of the catalog's growth. :func:`prune_job_history` deletes, for
jobs that ended before a cutoff, their transitions, and every job event (type
``*.job.*``, or one of :data:`JOB_DERIVED_EVENTS`: an escalation, its resolution, a
recovery point created, a restore test's verdict) published before it. It keeps the job rows
themselves (recovery points and runs refer to them), every job still pending or
running, and every other event: the audit trail of retention (lifecycle moves and
deletions, vault locks, legal holds) is never pruned here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from strongroom.catalog.models import EventRecord, Job, JobTransition

ESCALATION_EVENT: Final = "backup.escalation"
JOB_DERIVED_EVENTS: Final = (
    ESCALATION_EVENT,
    "backup.escalation.resolved",
    "recovery_point.created",
    "restore_test.passed",
    "restore_test.failed",
)
"""Events that report a job's outcome in other words: job history, pruned with it (unlike
the audit trail: deletions, holds, locks)."""


@dataclass(frozen=True)
class HistoryPruned:
    """How many rows a prune removed (or, for a dry run, would remove)."""

    events: int
    transitions: int


def prune_job_history(
    session: Session, *, before: datetime, dry_run: bool = False
) -> HistoryPruned:
    """Delete the job events published before ``before`` and the transitions of jobs that
    ended before it; with ``dry_run`` only count them."""
    ended = select(Job.id).where(Job.finished_at.is_not(None), Job.finished_at < before)
    transitions = JobTransition.job_id.in_(ended)
    events = (EventRecord.at < before) & or_(
        EventRecord.type.like("%.job.%"), EventRecord.type.in_(JOB_DERIVED_EVENTS)
    )
    if dry_run:
        return HistoryPruned(
            events=_count(session, select(func.count()).select_from(EventRecord), events),
            transitions=_count(
                session, select(func.count()).select_from(JobTransition), transitions
            ),
        )
    return HistoryPruned(
        events=_deleted(session.execute(delete(EventRecord).where(events))),
        transitions=_deleted(
            session.execute(
                delete(JobTransition)
                .where(transitions)
                .execution_options(synchronize_session=False)
            )
        ),
    )


def _count(session: Session, statement: Select[Any], where: ColumnElement[bool]) -> int:
    return int(session.scalar(statement.where(where)) or 0)


def _deleted(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)

"""Failure records: consecutive failed attempts per component, kept across restarts.

A *component* names what failed, e.g. ``backup/orders-db/daily`` (kind, resource, rule).
Each failed attempt bumps its record in one atomic upsert (``INSERT … ON CONFLICT DO
UPDATE`` on SQLite and PostgreSQL alike); a success resolves it, and the next failure
after that starts counting again from 1.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from strongroom.catalog.models import FailureRecord


def record_failed_attempt(
    session: Session,
    *,
    component: str,
    at: datetime,
    error_code: str,
    error_message: str,
    job_id: str | None = None,
    resource_id: int | None = None,
    rule_id: int | None = None,
) -> FailureRecord:
    """Count one failed attempt of ``component`` and return its record."""
    insert = (
        postgresql.insert(FailureRecord)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite.insert(FailureRecord)
    )
    statement = insert.values(
        component=component,
        resource_id=resource_id,
        rule_id=rule_id,
        attempts=1,
        last_job_id=job_id,
        last_error_code=error_code,
        last_error_message=error_message,
        first_at=at,
        last_at=at,
        escalated=False,
        escalated_at=None,
        resolved_at=None,
    )
    was_resolved = FailureRecord.resolved_at.is_not(None)
    statement = statement.on_conflict_do_update(
        index_elements=[FailureRecord.component],
        set_={
            "attempts": case((was_resolved, 1), else_=FailureRecord.attempts + 1),
            "first_at": case(
                (was_resolved, statement.excluded.first_at), else_=FailureRecord.first_at
            ),
            "escalated": case((was_resolved, False), else_=FailureRecord.escalated),
            "escalated_at": case((was_resolved, None), else_=FailureRecord.escalated_at),
            "resolved_at": None,
            "resource_id": statement.excluded.resource_id,
            "rule_id": statement.excluded.rule_id,
            "last_job_id": statement.excluded.last_job_id,
            "last_error_code": statement.excluded.last_error_code,
            "last_error_message": statement.excluded.last_error_message,
            "last_at": statement.excluded.last_at,
        },
    )
    session.execute(statement)
    record = get_failure_record(session, component)
    if record is None:  # pragma: no cover - the upsert above just wrote it
        raise RuntimeError(f"failure record {component!r} vanished")
    return record


def mark_escalated(session: Session, component: str, *, at: datetime) -> FailureRecord | None:
    """Record that the failures of ``component`` were escalated (nobody retries any more)."""
    session.execute(
        update(FailureRecord)
        .where(FailureRecord.component == component, FailureRecord.resolved_at.is_(None))
        .values(escalated=True, escalated_at=at)
        .execution_options(synchronize_session=False)
    )
    return get_failure_record(session, component)


def resolve(session: Session, component: str, *, at: datetime) -> bool:
    """Close the open record of ``component`` after a success (no-op when there is none).

    Returns True when the record it closed had escalated (the success resolves a page).
    """
    record = get_failure_record(session, component)
    escalated = record is not None and record.resolved_at is None and record.escalated
    session.execute(
        update(FailureRecord)
        .where(FailureRecord.component == component, FailureRecord.resolved_at.is_(None))
        .values(resolved_at=at)
        .execution_options(synchronize_session=False)
    )
    return escalated


def get_failure_record(session: Session, component: str) -> FailureRecord | None:
    """Return the record of ``component`` (open or resolved), or ``None``."""
    statement = (
        select(FailureRecord)
        .where(FailureRecord.component == component)
        .execution_options(populate_existing=True)
    )
    return session.scalar(statement)


def list_failure_records(
    session: Session, *, open_only: bool = True, escalated: bool | None = None
) -> list[FailureRecord]:
    """Return failure records, most recent failure first."""
    statement = select(FailureRecord).order_by(FailureRecord.last_at.desc())
    if open_only:
        statement = statement.where(FailureRecord.resolved_at.is_(None))
    if escalated is not None:
        statement = statement.where(FailureRecord.escalated.is_(escalated))
    return list(session.scalars(statement))

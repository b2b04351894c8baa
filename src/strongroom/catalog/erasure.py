"""The erasure requests' tables: recording, finding, cancelling requests and their evidence.

See ``services/erasure/`` for what the requests mean; this module only reads and writes
rows (``erasure_requests``, ``erasure_applications``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog.models import ErasureApplication, ErasureRequest
from strongroom.errors import ConflictError, NotFoundError

OPEN: Final = "open"
CANCELLED: Final = "cancelled"
STATES: Final = (OPEN, CANCELLED)


def add_request(session: Session, request: ErasureRequest) -> ErasureRequest:
    """Store a new request (its id set by the caller) and return it."""
    session.add(request)
    session.flush()
    return request


def find_request(session: Session, request_id: str) -> ErasureRequest:
    """Return the request with this id or unique id prefix (6+ characters).

    Raises NotFoundError when none matches, ConflictError when the prefix is ambiguous.
    """
    request = session.get(ErasureRequest, request_id, populate_existing=True)
    if request is not None:
        return request
    if len(request_id) >= 6:
        statement = select(ErasureRequest).where(ErasureRequest.id.startswith(request_id)).limit(2)
        matches = list(session.scalars(statement))
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ConflictError(f"erasure request prefix {request_id!r} is ambiguous")
    raise NotFoundError(f"no erasure request {request_id!r} in the catalog")


def list_requests(
    session: Session, *, resource: str | None = None, state: str | None = None
) -> list[ErasureRequest]:
    """The requests, oldest first, of one resource and/or in one state when given."""
    statement = select(ErasureRequest).order_by(ErasureRequest.requested_at, ErasureRequest.id)
    if resource is not None:
        statement = statement.where(ErasureRequest.resource == resource)
    if state is not None:
        statement = statement.where(ErasureRequest.state == state)
    return list(session.scalars(statement))


def open_requests(session: Session, resource: str) -> list[ErasureRequest]:
    """The open requests of ``resource``, oldest first (what a restore re-applies)."""
    return list_requests(session, resource=resource, state=OPEN)


def cancel_request(
    session: Session, request_id: str, *, by: str, at: datetime, reason: str
) -> ErasureRequest:
    """Mark a request cancelled; raises ConflictError when it is not open."""
    request = find_request(session, request_id)
    if request.state != OPEN:
        raise ConflictError(f"erasure request {request.id} is {request.state}, not open")
    request.state = CANCELLED
    request.cancelled_by = by
    request.cancelled_at = at
    request.cancel_reason = reason
    session.flush()
    return request


def record_application(
    session: Session,
    *,
    request_id: str,
    job_id: str | None,
    point_id: str | None,
    restore_test: bool,
    at: datetime,
    effect: Mapping[str, Any],
) -> ErasureApplication:
    """Keep one re-application (an effect's JSON: target, affected, remaining, details)."""
    row = ErasureApplication(
        request_id=request_id,
        job_id=job_id,
        point_id=point_id,
        restore_test=restore_test,
        applied_at=at,
        target=str(effect.get("target", "")),
        affected=int(effect.get("affected", 0)),
        remaining=effect.get("remaining"),
        details={"details": list(effect.get("details", []))},
    )
    session.add(row)
    session.flush()
    return row


def applications(
    session: Session,
    request_ids: Sequence[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ErasureApplication]:
    """Re-applications, oldest first: of the given requests, within [since, until)."""
    statement = select(ErasureApplication).order_by(
        ErasureApplication.applied_at, ErasureApplication.id
    )
    if request_ids is not None:
        statement = statement.where(ErasureApplication.request_id.in_(list(request_ids)))
    if since is not None:
        statement = statement.where(ErasureApplication.applied_at >= since)
    if until is not None:
        statement = statement.where(ErasureApplication.applied_at < until)
    return list(session.scalars(statement))

"""``strongroom erasure add|list|show|cancel``: recording erasure requests, audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog import erasure as catalog_erasure
from strongroom.catalog.models import ErasureRequest
from strongroom.catalog.resources import get_resource
from strongroom.errors import ConfigError, UnsupportedError
from strongroom.services.audit.trail import record
from strongroom.services.context import AppContext
from strongroom.sources.erasure import KIND_BY_TYPE, check_pattern, check_statement

DEFAULT_DUE: Final = timedelta(days=30)
"""GDPR Art. 12(3): a request is answered within one month."""
ADDED: Final = "erasure.add"
CANCELLED: Final = "erasure.cancel"


@dataclass(frozen=True)
class Method:
    """How a request erases: sql ``statements`` (+ ``remaining`` check, ``database``) or
    key/path ``patterns``."""

    statements: Sequence[str] = ()
    remaining: str | None = None
    database: str | None = None
    patterns: Sequence[str] = ()


@dataclass(frozen=True)
class RequestView:
    """One request as the CLI and the reports show it, with its re-applications."""

    row: ErasureRequest
    applications: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The request as JSON (one shape for list, show and the compliance report)."""
        row = self.row
        return {
            "id": row.id,
            "resource": row.resource,
            "subject": row.subject,
            "kind": row.kind,
            "method": row.method,
            "reason": row.reason,
            "requested_by": row.requested_by,
            "requested_at": row.requested_at.isoformat(),
            "due_at": row.due_at.isoformat(),
            "state": row.state,
            "cancelled_by": row.cancelled_by,
            "cancelled_at": row.cancelled_at.isoformat() if row.cancelled_at else None,
            "cancel_reason": row.cancel_reason,
            "applications": self.applications,
        }


def checked_method(kind: str, method: Method) -> dict[str, Any]:
    """Return the method of a request of ``kind`` as stored, or raise ``ConfigError``
    naming what is wrong (every statement and pattern is checked)."""
    if kind == "sql":
        if method.patterns:
            raise ConfigError("a SQL resource is erased by statements (--sql), not --pattern")
        if not method.statements:
            raise ConfigError(
                "an erasure request for a SQL resource needs at least one statement (--sql)",
                hint="e.g. --sql 'DELETE FROM users WHERE id = %(subject)s'",
            )
        statements = [
            check_statement(text, f"statement {number}")
            for number, text in enumerate(method.statements, 1)
        ]
        remaining = None
        if method.remaining is not None:
            remaining = check_statement(method.remaining, "the remaining check (--remaining)")
            if not remaining.lower().startswith("select"):
                raise ConfigError(
                    f"the remaining check must be a SELECT counting what is left: {remaining!r}",
                    hint="e.g. --remaining 'SELECT count(*) FROM users WHERE id = %(subject)s'",
                )
        return {"statements": statements, "remaining": remaining, "database": method.database}
    if method.statements or method.remaining is not None or method.database is not None:
        raise ConfigError(
            f"a resource erased by {kind} takes --pattern only (not --sql, --remaining, --database)"
        )
    if not method.patterns:
        example = "user:{subject}:*" if kind == "keys" else "users/{subject}/**"
        raise ConfigError(
            f"an erasure request of {kind} needs at least one --pattern",
            hint=f"e.g. --pattern '{example}'",
        )
    return {
        "patterns": [
            check_pattern(text, "keys" if kind == "keys" else "paths", f"pattern {number}")
            for number, text in enumerate(method.patterns, 1)
        ]
    }


class ErasureService:
    """Erasure requests on one application context; every change is audited."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def add(
        self,
        resource: str,
        subject: str,
        method: Method,
        *,
        reason: str,
        due: datetime | None = None,
    ) -> RequestView:
        """Record a request to erase ``subject`` from every restore of ``resource``.

        Raises ``ConfigError`` for an empty subject or reason, a bad method or a due date
        before now; ``NotFoundError`` for an unknown resource; ``UnsupportedError`` for a
        type strongroom cannot erase from (kafka, kubernetes, sqlite).
        """
        subject = subject.strip()
        if not subject:
            raise ConfigError("an erasure request needs the subject's id")
        if not reason.strip():
            raise ConfigError("an erasure request needs a reason (--reason: the ticket or case)")
        now = self.context.now()
        if due is not None and due < now:
            raise ConfigError(f"the due date {due.isoformat()} is in the past")
        with self.context.catalog.session() as session:
            row = get_resource(session, resource)
            kind = KIND_BY_TYPE.get(row.type)
            if kind is None:
                raise UnsupportedError(
                    f"resource {resource} is of type {row.type}, which strongroom cannot erase "
                    "a subject from",
                    hint=f"Erasure requests apply to {', '.join(sorted(KIND_BY_TYPE))} resources.",
                )
            request = catalog_erasure.add_request(
                session,
                ErasureRequest(
                    id=str(uuid.uuid4()),
                    resource=resource,
                    subject=subject,
                    kind=kind,
                    method=checked_method(kind, method),
                    reason=reason.strip(),
                    requested_by=self.context.actor.name,
                    requested_at=now,
                    due_at=due or now + DEFAULT_DUE,
                    state=catalog_erasure.OPEN,
                ),
            )
            record(
                session,
                actor=self.context.actor,
                at=now,
                action=ADDED,
                subject=request.id,
                reason=request.reason,
                details={"resource": resource, "kind": kind, "due_at": request.due_at.isoformat()},
            )
            return RequestView(request, [])

    def list(self, *, resource: str | None = None, state: str | None = None) -> list[RequestView]:
        """The requests, oldest first; ``ConfigError`` for an unknown state."""
        if state is not None and state not in catalog_erasure.STATES:
            raise ConfigError(
                f"unknown state {state!r}; one of {', '.join(catalog_erasure.STATES)}"
            )
        with self.context.catalog.session(readonly=True) as session:
            rows = catalog_erasure.list_requests(session, resource=resource, state=state)
            return _views(session, rows)

    def show(self, request_id: str) -> RequestView:
        """One request (id or unique prefix) with every re-application; NotFoundError."""
        with self.context.catalog.session(readonly=True) as session:
            return _views(session, [catalog_erasure.find_request(session, request_id)])[0]

    def cancel(self, request_id: str, *, reason: str) -> RequestView:
        """Cancel an open request: restores stop re-applying it. Audited; ConfigError
        without a reason, ConflictError when it is not open."""
        if not reason.strip():
            raise ConfigError("cancelling an erasure request needs a reason (--reason)")
        now = self.context.now()
        with self.context.catalog.session() as session:
            row = catalog_erasure.cancel_request(
                session, request_id, by=self.context.actor.name, at=now, reason=reason.strip()
            )
            record(
                session,
                actor=self.context.actor,
                at=now,
                action=CANCELLED,
                subject=row.id,
                reason=reason.strip(),
                details={"resource": row.resource},
            )
            return _views(session, [row])[0]


def _views(session: Session, rows: list[ErasureRequest]) -> list[RequestView]:
    applied: dict[str, list[dict[str, Any]]] = {row.id: [] for row in rows}
    for item in catalog_erasure.applications(session, list(applied)):
        applied[item.request_id].append(
            {
                "job_id": item.job_id,
                "point_id": item.point_id,
                "restore_test": item.restore_test,
                "applied_at": item.applied_at.isoformat(),
                "target": item.target,
                "affected": item.affected,
                "remaining": item.remaining,
            }
        )
    return [RequestView(row, applied[row.id]) for row in rows]

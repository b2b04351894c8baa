"""Recording one operation in the audit trail: the one function every service calls.

The action names are dotted (``backup.start``, ``vault.key.rotate``; the full list is in
``docs/audit.md``); ``outcome`` is ``succeeded``, ``refused`` (a rule said no) or
``failed`` (an error stopped it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog.audit import NewEntry, append_entry
from strongroom.catalog.models import AuditEntry
from strongroom.errors import StrongroomError
from strongroom.logs import get_logger
from strongroom.services.context import Actor, AppContext

SUCCEEDED: Final = "succeeded"
REFUSED: Final = "refused"
FAILED: Final = "failed"
OUTCOMES: Final = (SUCCEEDED, REFUSED, FAILED)

_logger = get_logger(__name__)


def record(
    session: Session,
    *,
    actor: Actor,
    at: datetime,
    action: str,
    subject: str,
    outcome: str = SUCCEEDED,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the trail in ``session`` (make it the transaction's last write:
    it holds the chain lock until commit) and return it.

    Raises ValueError for an unknown outcome or details that are not plain JSON.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    return append_entry(
        session,
        NewEntry(
            at=at,
            actor=actor.name,
            origin=actor.origin,
            action=action,
            subject=subject,
            outcome=outcome,
            reason=reason,
            details=details,
        ),
    )


def record_alone(
    context: AppContext,
    *,
    action: str,
    subject: str,
    outcome: str,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> None:
    """Record one entry in a transaction of its own (a refused or failed operation, whose
    own transaction rolled back), as ``actor`` or the context's actor."""
    with context.catalog.session() as session:
        record(
            session,
            actor=actor or context.actor,
            at=context.now(),
            action=action,
            subject=subject,
            outcome=outcome,
            reason=reason,
            details=details,
        )


def record_refusal(
    context: AppContext,
    *,
    action: str,
    subject: str,
    error: BaseException,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record that ``action`` on ``subject`` did not happen because of ``error``: outcome
    ``refused`` for an error of bad input or a rule (not retryable), ``failed`` for one
    a retry may cure or an unexpected one.

    Never raises: the caller is about to raise ``error`` itself, and a catalog that
    cannot record the refusal (often the very cause of it) must not hide that error; the
    lost entry is logged instead.
    """
    retryable = getattr(error, "retryable", True)
    try:
        record_alone(
            context,
            action=action,
            subject=subject,
            outcome=FAILED if retryable else REFUSED,
            details={**(details or {}), "error": f"{type(error).__name__}: {error}"},
        )
    except StrongroomError as recording_error:
        _logger.warning(
            "could not record a refused operation in the audit trail",
            extra={"action": action, "subject": subject, "error": str(recording_error)},
        )

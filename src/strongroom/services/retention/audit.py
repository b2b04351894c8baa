"""The audit events of retention: lifecycle moves and deletions, vault locks, legal holds.

Each is appended to the catalog's event feed inside the transaction that makes the change
(so an event exists if and only if the change committed); a refused attempt is recorded
in a transaction of its own, since the refused change itself rolls back. Every payload
names who acted (``actor``); ``at`` is the event's time.

Each event is also an entry of the hash-chained audit trail (``services/audit``), in the
same transaction: action = the event type, outcome ``refused`` for a ``*_refused`` type.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog.events import append_event
from strongroom.services.audit.trail import REFUSED, SUCCEEDED
from strongroom.services.audit.trail import record as record_in_trail
from strongroom.services.context import Actor, local_actor

POINT_MOVED_TO_COLD: Final = "recovery_point.moved_to_cold"
POINT_DELETED: Final = "recovery_point.deleted"
POINT_DELETE_REFUSED: Final = "recovery_point.delete_refused"
LEGAL_HOLD_ADDED: Final = "recovery_point.legal_hold.added"
LEGAL_HOLD_REMOVED: Final = "recovery_point.legal_hold.removed"
LOCK_SET: Final = "vault.lock.set"
LOCK_CHANGED: Final = "vault.lock.changed"
LOCK_REMOVED: Final = "vault.lock.removed"
LOCK_CHANGE_REFUSED: Final = "vault.lock.change_refused"
LIFECYCLE_RUN: Final = "lifecycle.run.completed"

LOCK_EVENTS: Final = (LOCK_SET, LOCK_CHANGED, LOCK_REMOVED, LOCK_CHANGE_REFUSED)


def record(
    session: Session,
    type: str,
    subject: str,
    *,
    at: datetime,
    actor: str,
    details: Mapping[str, Any] | None = None,
    origin: str | None = None,
) -> None:
    """Append one audit event (``actor`` and ``details`` make its payload) and its entry
    in the audit trail (from ``origin``, default this process)."""
    append_event(
        session, at=at, type=type, subject=subject, payload={"actor": actor, **(details or {})}
    )
    reason = (details or {}).get("reason")
    record_in_trail(
        session,
        actor=Actor(name=actor, origin=origin or local_actor().origin),
        at=at,
        action=type,
        subject=subject,
        outcome=REFUSED if type.endswith("_refused") else SUCCEEDED,
        reason=None if reason is None else str(reason),
        details=details,
    )

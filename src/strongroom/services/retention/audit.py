"""The audit events of retention: lifecycle moves and deletions, vault locks, legal holds.

Each is appended to the catalog's event feed inside the transaction that makes the change
(so an event exists if and only if the change committed); a refused attempt is recorded
in a transaction of its own, since the refused change itself rolls back. Every payload
names who acted (``actor``); ``at`` is the event's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog.events import append_event

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
) -> None:
    """Append one audit event (``actor`` and ``details`` make its payload)."""
    append_event(
        session, at=at, type=type, subject=subject, payload={"actor": actor, **(details or {})}
    )

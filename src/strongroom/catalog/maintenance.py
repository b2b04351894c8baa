"""When the lifecycle runner and each vault's garbage collection last ran, and when each
vault last lost a recovery point: what the monitor's overdue checks and the metrics read.

The run times live in one ``settings`` row (``maintenance``: ISO 8601 times), written by
the runs themselves (``services/retention/lifecycle.py``, ``services/vaults/service.py``);
the deletions are the ``recovery_point.deleted`` events of the feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.catalog.models import EventRecord, RecoveryPoint, Vault
from strongroom.catalog.outbox import read_section, write_section
from strongroom.catalog.types import PointState

MAINTENANCE: Final = "maintenance"
"""The ``settings`` row: ``{"lifecycle_run_at": ISO, "gc_at": {vault: ISO}}``."""
POINT_DELETED: Final = "recovery_point.deleted"


@dataclass(frozen=True)
class MaintenanceTimes:
    """The last full lifecycle run and each vault's last garbage collection (None, absent:
    never recorded)."""

    lifecycle_run_at: datetime | None = None
    gc_at: dict[str, datetime] = field(default_factory=dict)


def read_times(session: Session) -> MaintenanceTimes:
    """Return the recorded run times."""
    stored = read_section(session, MAINTENANCE) or {}
    lifecycle = stored.get("lifecycle_run_at")
    gc: dict[str, Any] = stored.get("gc_at") or {}
    return MaintenanceTimes(
        lifecycle_run_at=datetime.fromisoformat(lifecycle) if lifecycle else None,
        gc_at={vault: datetime.fromisoformat(at) for vault, at in gc.items()},
    )


def record_lifecycle_run(session: Session, *, at: datetime) -> None:
    """Record that a lifecycle run over every vault finished at ``at``."""
    stored = read_section(session, MAINTENANCE) or {}
    write_section(session, MAINTENANCE, {**stored, "lifecycle_run_at": at.isoformat()}, at=at)


def record_gc(session: Session, vault: str, *, at: datetime) -> None:
    """Record that vault ``vault``'s garbage collection finished at ``at``."""
    stored = read_section(session, MAINTENANCE) or {}
    gc = {**(stored.get("gc_at") or {}), vault: at.isoformat()}
    write_section(session, MAINTENANCE, {**stored, "gc_at": gc}, at=at)


def last_deletions(session: Session) -> dict[str, datetime]:
    """Return, per vault name, when the newest of its recovery points was deleted."""
    rows = session.execute(
        select(Vault.name, func.max(EventRecord.at))
        .join(RecoveryPoint, RecoveryPoint.id == EventRecord.subject)
        .join(Vault, Vault.id == RecoveryPoint.vault_id)
        .where(EventRecord.type == POINT_DELETED)
        .group_by(Vault.name)
    )
    return {str(name): at for name, at in rows if at is not None}


def oldest_point_with_lifecycle(session: Session) -> datetime | None:
    """Return when the oldest live point with a lifecycle date (a move or a deletion
    the runner must carry out) was created, or None."""
    return session.scalar(
        select(func.min(RecoveryPoint.created_at)).where(
            RecoveryPoint.state.in_((PointState.AVAILABLE, PointState.PARTIAL)),
            (RecoveryPoint.delete_at.is_not(None)) | (RecoveryPoint.move_to_cold_at.is_not(None)),
        )
    )

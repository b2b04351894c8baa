"""When the lifecycle runner and each vault's garbage collection last ran, and when each
vault last lost a recovery point: what the monitor's overdue checks and the metrics read.

Each run time lives in a ``settings`` row of its own (``maintenance.lifecycle_run_at``,
``maintenance.gc_at:VAULT``; values ``{"at": ISO 8601}``, plus ``"vault"`` in the latter), written by the runs themselves
(``services/retention/lifecycle.py``, ``services/vaults/service.py``): two vaults collected
at once by two processes write two rows, so neither time is lost (one shared row was a
read-modify-write that could drop the other vault's time). The deletions are the
``recovery_point.deleted`` events of the feed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.catalog.models import EventRecord, RecoveryPoint, Setting, Vault
from strongroom.catalog.outbox import read_section, write_section
from strongroom.catalog.types import PointState

LIFECYCLE_RUN: Final = "maintenance.lifecycle_run_at"
"""The ``settings`` row of the last full lifecycle run: ``{"at": ISO}``."""
GC_PREFIX: Final = "maintenance.gc_at:"
"""The prefix of each vault's ``settings`` row of its last garbage collection."""
SETTING_NAME_LENGTH: Final = 100
"""The length of ``settings.name`` (catalog/models.py)."""
POINT_DELETED: Final = "recovery_point.deleted"


@dataclass(frozen=True)
class MaintenanceTimes:
    """The last full lifecycle run and each vault's last garbage collection (None, absent:
    never recorded)."""

    lifecycle_run_at: datetime | None = None
    gc_at: dict[str, datetime] = field(default_factory=dict)


def read_times(session: Session) -> MaintenanceTimes:
    """Return the recorded run times."""
    lifecycle = read_section(session, LIFECYCLE_RUN) or {}
    rows = session.execute(select(Setting.value).where(Setting.name.startswith(GC_PREFIX)))
    gc: dict[str, datetime] = {}
    for value in rows.scalars():
        if isinstance(value, dict) and value.get("at") and value.get("vault"):
            gc[str(value["vault"])] = datetime.fromisoformat(value["at"])
    at: Any = lifecycle.get("at")
    return MaintenanceTimes(lifecycle_run_at=datetime.fromisoformat(at) if at else None, gc_at=gc)


def record_lifecycle_run(session: Session, *, at: datetime) -> None:
    """Record that a lifecycle run over every vault finished at ``at``."""
    write_section(session, LIFECYCLE_RUN, {"at": at.isoformat()}, at=at)


def record_gc(session: Session, vault: str, *, at: datetime) -> None:
    """Record that vault ``vault``'s garbage collection finished at ``at`` (its own row)."""
    write_section(session, _gc_row(vault), {"vault": vault, "at": at.isoformat()}, at=at)


def _gc_row(vault: str) -> str:
    """The settings row of ``vault``'s GC time: the name, or its digest when too long for
    the 100-character key (the row's value names the vault either way)."""
    row = GC_PREFIX + vault
    if len(row) <= SETTING_NAME_LENGTH:
        return row
    return GC_PREFIX + hashlib.sha256(vault.encode()).hexdigest()


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

"""A vault's lock as the catalog records it, and the questions asked of it.

The lock lives in the catalog's ``vaults`` row (``lock_mode``, ``lock_min_retention_days``,
``lock_max_retention_days``, ``lock_changeable_until``); every service that deletes or
changes retention reads it from there, in the transaction that acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from strongroom.catalog.models import Vault as VaultRow
from strongroom.config.vaults import VaultLock

LockMode = Literal["governance", "compliance"]


@dataclass(frozen=True, slots=True)
class LockState:
    """The lock of vault ``vault``; ``mode`` is None when the vault is not locked.

    ``changeable_until`` ends the grace period of a compliance lock. A compliance lock
    without one (written by something that did not record it) counts as immutable: the
    safe reading of a compliance lock whose grace period is unknown.
    """

    vault: str
    mode: LockMode | None = None
    min_retention_days: int | None = None
    max_retention_days: int | None = None
    changeable_until: datetime | None = None

    @classmethod
    def of(cls, row: VaultRow) -> LockState:
        """Read the lock columns of a catalog vault row."""
        mode = row.lock_mode if row.lock_mode in ("governance", "compliance") else None
        return cls(
            vault=row.name,
            mode=cast("LockMode | None", mode),
            min_retention_days=row.lock_min_retention_days if mode else None,
            max_retention_days=row.lock_max_retention_days if mode else None,
            changeable_until=row.lock_changeable_until if mode == "compliance" else None,
        )

    @property
    def locked(self) -> bool:
        """Whether the vault has a lock."""
        return self.mode is not None

    def immutable(self, now: datetime) -> bool:
        """Whether nobody may change or remove the lock any more (compliance, grace over)."""
        if self.mode != "compliance":
            return False
        return self.changeable_until is None or now >= self.changeable_until

    def in_grace(self, now: datetime) -> bool:
        """Whether this is a compliance lock still in its grace period."""
        return self.mode == "compliance" and not self.immutable(now)

    def earliest_deletion(self, created_at: datetime) -> datetime | None:
        """When a point created at ``created_at`` may be deleted under this lock (None: any time)."""
        if self.mode is None or not self.min_retention_days:
            return None
        return created_at + timedelta(days=self.min_retention_days)

    def same_rules(self, lock: VaultLock | None) -> bool:
        """Whether ``lock`` states the same mode and retention bounds as this one."""
        if lock is None:
            return self.mode is None
        return (self.mode, self.min_retention_days, self.max_retention_days) == (
            lock.mode,
            lock.min_retention_days,
            lock.max_retention_days,
        )

    def as_config(self) -> VaultLock | None:
        """The lock as a configuration model (for the checks of ``config.checks``)."""
        if self.mode is None:
            return None
        return VaultLock.model_construct(
            mode=self.mode,
            min_retention_days=self.min_retention_days,
            max_retention_days=self.max_retention_days,
            changeable_for_days=None,
        )

    def to_json(self) -> dict[str, Any]:
        """The lock as plain JSON (for events and ``--output json``)."""
        return {
            "mode": self.mode,
            "min_retention_days": self.min_retention_days,
            "max_retention_days": self.max_retention_days,
            "changeable_until": self.changeable_until.isoformat()
            if self.changeable_until
            else None,
        }

    def describe(self, now: datetime) -> str:
        """One line for people: the mode, the bounds and whether it can still change."""
        if self.mode is None:
            return "not locked"
        bounds = ", ".join(
            part
            for part in (
                f"min retention {self.min_retention_days} days" if self.min_retention_days else "",
                f"max retention {self.max_retention_days} days" if self.max_retention_days else "",
            )
            if part
        )
        bounds = f" ({bounds})" if bounds else ""
        if self.mode == "governance":
            return f"governance lock{bounds}: only a privileged action can change or remove it"
        if self.immutable(now):
            since = f" since {_day(self.changeable_until)}" if self.changeable_until else ""
            return f"compliance lock{bounds}: immutable{since}"
        return (
            f"compliance lock{bounds}: changeable until {_day(self.changeable_until)}, "
            "immutable after that"
        )


def _day(when: datetime | None) -> str:
    return when.isoformat(timespec="seconds") if when else "?"

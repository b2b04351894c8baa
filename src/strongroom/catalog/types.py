"""Column types and the vocabulary of the catalog: UTC timestamps, job kinds and states.

The vocabulary lives here, at the bottom, because the catalog stores and queries these
values; which state may follow which is the engine's business (``strongroom.engine.states``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as a timezone-aware UTC datetime.

    Given an aware datetime (any zone) it stores the same instant in UTC; a naive datetime
    raises ``ValueError`` because its instant is unknown. PostgreSQL keeps ``timestamptz``;
    SQLite keeps a fixed-width UTC text that sorts and compares in time order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given; the catalog needs aware ones"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class _StrEnumType(TypeDecorator[E], Generic[E]):
    """A ``StrEnum`` stored as its plain string value (no database enum type, no migration churn)."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E], length: int = 16) -> None:
        super().__init__(length)
        self._enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self._enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self._enum(value)


class JobKind(StrEnum):
    """What a job does; every kind runs through the same state machine."""

    BACKUP = "backup"
    RESTORE = "restore"
    VERIFY = "verify"
    COPY = "copy"
    DELETE = "delete"


class JobState(StrEnum):
    """The states of a job (the seed's AWS Backup job states)."""

    CREATED = "CREATED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    EXPIRED = "EXPIRED"


class PointState(StrEnum):
    """The states of a recovery point."""

    AVAILABLE = "AVAILABLE"
    PARTIAL = "PARTIAL"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"


class Tier(StrEnum):
    """Where a recovery point's data lives: the vault itself (warm) or its cold tier."""

    WARM = "warm"
    COLD = "cold"


class JobKindType(_StrEnumType[JobKind]):
    """Column type for :class:`JobKind`."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(JobKind)


class JobStateType(_StrEnumType[JobState]):
    """Column type for :class:`JobState`."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(JobState)


class PointStateType(_StrEnumType[PointState]):
    """Column type for :class:`PointState`."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(PointState)


class TierType(_StrEnumType[Tier]):
    """Column type for :class:`Tier`."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(Tier)

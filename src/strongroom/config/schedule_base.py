"""What every schedule offers, and the timezone and datetime checks they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from strongroom.errors import ConfigError


def resolve_timezone(tz: ZoneInfo | str) -> ZoneInfo:
    """Return the IANA timezone ``tz`` names (a ``ZoneInfo`` is returned as it is).

    Raises ConfigError naming the value when it is not a known IANA name
    (``ScheduleExpressionTimezone`` in the AWS plan document).
    """
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: Python 3.11 raises IsADirectoryError for names like "America".
        raise ConfigError(
            f"ScheduleExpressionTimezone value {tz!r} is not a known IANA timezone",
            hint="Use an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'.",
        ) from exc


def require_aware(moment: datetime, name: str) -> datetime:
    """Return ``moment`` converted to UTC; a naive datetime raises ConfigError."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(
            f"{name} {moment.isoformat()!r} has no timezone",
            hint="Pass an aware datetime, e.g. datetime.now(UTC).",
        )
    return moment.astimezone(UTC)


class Schedule(ABC):
    """A parsed schedule expression: asks when it fires, never reads a clock itself.

    Fire times are aware datetimes in the timezone asked for, strictly after the moment
    given. Compare or subtract them in UTC: two results in the same zone compare by wall
    time in Python, which is wrong around a fall-back hour.
    """

    expression: str

    @property
    @abstractmethod
    def kind(self) -> str:
        """``"cron"`` (AWS 6-field), ``"vixie"`` (5-field) or ``"rate"``."""

    @abstractmethod
    def next_after(
        self, after: datetime, tz: ZoneInfo | str = "UTC", *, anchor: datetime | None = None
    ) -> datetime | None:
        """Return the first fire time strictly after ``after``, or None if there is none.

        Given an aware ``after`` (naive raises ConfigError), the rule's timezone ``tz``
        (an IANA name or ZoneInfo; unknown raises ConfigError) and, for ``rate()`` only,
        the ``anchor`` that fixes its phase (default: the Unix epoch). None means the
        schedule never fires again (a year field in the past, or past year 2199).
        """

    @abstractmethod
    def describe(self) -> str:
        """Return a short English explanation, e.g. ``at 02:30, every day``."""

    def next_fire_times(
        self,
        after: datetime,
        count: int,
        tz: ZoneInfo | str = "UTC",
        *,
        anchor: datetime | None = None,
    ) -> list[datetime]:
        """Return up to ``count`` fire times strictly after ``after``, increasing.

        Fewer than ``count`` come back only when the schedule stops firing. Raises
        ConfigError for a negative count, a naive ``after`` or an unknown timezone.
        """
        if count < 0:
            raise ConfigError(f"count {count} is negative", hint="Ask for zero or more fire times.")
        zone = resolve_timezone(tz)
        require_aware(after, "after")
        times: list[datetime] = []
        moment: datetime | None = after
        while len(times) < count and moment is not None:
            moment = self.next_after(moment, zone, anchor=anchor)
            if moment is not None:
                times.append(moment)
        return times

    def __str__(self) -> str:
        return self.expression

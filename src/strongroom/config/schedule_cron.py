"""Calendar schedules: AWS ``cron(...)`` and 5-field Vixie cron, evaluated in a timezone.

Fire times are found by walking the wall-clock calendar of the rule's timezone (year,
month, day, hour, minute; each level jumps straight to its next allowed value) and
mapping each matching wall time to an instant:

- a wall time that exists once fires then;
- a wall time that exists twice (the repeated hour when clocks go back) fires once, at
  its first occurrence;
- a wall time that does not exist (the hour skipped when clocks go forward) is skipped
  for AWS expressions, as EventBridge Scheduler documents; for Vixie expressions whose
  minute and hour fields are fixed (neither starts with ``*``) it fires once at the
  first minute after the gap, as ISC/Vixie cron runs such jobs, and is skipped otherwise.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from strongroom.config.schedule_base import Schedule, require_aware, resolve_timezone
from strongroom.config.schedule_fields import (
    WEEKDAY_ABBREVIATIONS,
    DayRule,
    DaysOfMonth,
    LastDayOfMonth,
    LastOfWeekday,
    LastWeekdayOfMonth,
    NearestWeekday,
    Weekdays,
)

ONE_MINUTE = timedelta(minutes=1)
VIXIE_HORIZON_YEARS = 400
"""The Gregorian calendar repeats every 400 years: a Vixie line silent that long never fires."""


@dataclass(frozen=True, slots=True)
class DaySelection:
    """Which days of a month fire: the rules, and whether all or any of them must match.

    AWS has exactly one rule (the day field that is not ``?``). Vixie has one per
    restricted day field; with two, a day matching either fires (``any_of``), except
    that a field starting with ``*`` (such as ``*/2``) makes both required, as in
    ISC cron.
    """

    rules: tuple[DayRule, ...]
    any_of: bool

    def days(self, year: int, month: int) -> tuple[int, ...]:
        """Return the sorted matching days of one month."""
        return _month_days(self, year, month)


@lru_cache(maxsize=16_384)
def _month_days(selection: DaySelection, year: int, month: int) -> tuple[int, ...]:
    first_weekday, length = calendar.monthrange(year, month)
    if not selection.rules:
        return tuple(range(1, length + 1))
    sets = [rule.days_in(first_weekday, length) for rule in selection.rules]
    chosen = frozenset.union(*sets) if selection.any_of else frozenset.intersection(*sets)
    return tuple(sorted(chosen))


@dataclass(frozen=True, slots=True)
class CronSchedule(Schedule):
    """A parsed ``cron(...)`` or 5-field expression: sorted allowed values per field.

    ``years`` is None for Vixie lines (every year). ``gap_policy`` says what a wall time
    inside a spring-forward gap does: ``"skip"`` or ``"shift"`` (fire at the gap's end).
    """

    expression: str
    dialect: Literal["aws", "vixie"]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_selection: DaySelection
    months: tuple[int, ...]
    years: tuple[int, ...] | None
    gap_policy: Literal["skip", "shift"]
    fields: tuple[str, ...] = field(default=(), compare=False)

    @property
    def kind(self) -> str:
        """``"cron"`` for AWS expressions, ``"vixie"`` for 5-field lines."""
        return "cron" if self.dialect == "aws" else "vixie"

    def next_after(
        self, after: datetime, tz: ZoneInfo | str = "UTC", *, anchor: datetime | None = None
    ) -> datetime | None:
        """Return the first fire time strictly after ``after`` in ``tz``, or None.

        ``anchor`` is accepted for a uniform interface and ignored: calendar schedules
        have no phase. See the module docstring for the daylight-saving rules.
        """
        zone = resolve_timezone(tz)
        after_utc = require_aware(after, "after")
        wall_after = after_utc.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        try:
            start = wall_after + ONE_MINUTE
        except OverflowError:
            return None
        for wall in self._walls_from(start):
            instant = self._instant(wall, zone)
            if instant is not None and instant.astimezone(UTC) > after_utc:
                return instant
        return None

    def matches(self, wall: datetime) -> bool:
        """Tell whether a wall-clock time (its timezone is ignored) matches every field."""
        if self.years is not None and wall.year not in self.years:
            return False
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and wall.day in self.day_selection.days(wall.year, wall.month)
            and wall.second == 0
            and wall.microsecond == 0
        )

    def _years_from(self, year: int) -> Iterator[int]:
        if self.years is None:
            yield from range(year, min(year + VIXIE_HORIZON_YEARS, 9999) + 1)
        else:
            yield from self.years[bisect_left(self.years, year) :]

    def _walls_from(self, start: datetime) -> Iterator[datetime]:
        """Yield the matching wall times at or after ``start`` (naive), in order."""
        for year in self._years_from(start.year):
            first_month = start.month if year == start.year else 1
            for month in self.months[bisect_left(self.months, first_month) :]:
                same_month = year == start.year and month == start.month
                days = self.day_selection.days(year, month)
                for day in days[bisect_left(days, start.day) :] if same_month else days:
                    same_day = same_month and day == start.day
                    hours = (
                        self.hours[bisect_left(self.hours, start.hour) :]
                        if same_day
                        else self.hours
                    )
                    for hour in hours:
                        if same_day and hour == start.hour:
                            minutes = self.minutes[bisect_left(self.minutes, start.minute) :]
                        else:
                            minutes = self.minutes
                        for minute in minutes:
                            yield datetime(year, month, day, hour, minute)  # noqa: DTZ001

    def _instant(self, wall: datetime, zone: ZoneInfo) -> datetime | None:
        """Map a naive wall time to the aware instant it fires at, or None (skipped)."""
        candidate = wall.replace(tzinfo=zone)  # fold=0: the first of a repeated wall time
        if _exists(candidate):
            return candidate
        if self.gap_policy == "skip":
            return None
        return _end_of_gap(wall, zone)

    def describe(self) -> str:
        """Return a short English explanation of the expression."""
        return describe_cron(self)


def _exists(candidate: datetime) -> bool:
    """Tell whether an aware wall time survives a round trip through UTC (not in a gap)."""
    back = candidate.astimezone(UTC).astimezone(candidate.tzinfo)
    return back.replace(tzinfo=None) == candidate.replace(tzinfo=None)


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """Return the first whole-minute wall time after the gap that swallowed ``wall``."""
    missing = wall
    # Read with the offset before the jump, ``wall`` lands past the gap: an upper bound.
    past = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    present = past.replace(second=0, microsecond=0)
    if present < past:
        present += ONE_MINUTE
    while present - missing > ONE_MINUTE:
        middle = missing + (present - missing) // 2
        middle = middle.replace(second=0, microsecond=0)
        if _exists(middle.replace(tzinfo=zone)):
            present = middle
        else:
            missing = middle
    return present.replace(tzinfo=zone)


# --- describe ----------------------------------------------------------------------------


def describe_cron(schedule: CronSchedule) -> str:
    """Explain a cron schedule in a few words, echoing fields that have no short name."""
    minute, hour = schedule.fields[0], schedule.fields[1]
    if len(schedule.minutes) == 1 and len(schedule.hours) == 1:
        parts = [f"at {schedule.hours[0]:02d}:{schedule.minutes[0]:02d}"]
    else:
        parts = [f"at minute {minute} past hour {hour}"]
    parts.append(_describe_days(schedule.day_selection))
    if len(schedule.months) < 12:
        names = ",".join(calendar.month_abbr[month].upper() for month in schedule.months)
        parts.append(f"in {names}")
    if schedule.years is not None and len(schedule.fields) > 5 and schedule.fields[5] != "*":
        parts.append(f"in year {schedule.fields[5]}")
    return ", ".join(parts)


def _describe_days(selection: DaySelection) -> str:
    if not selection.rules:
        return "every day"
    texts = [_describe_rule(rule) for rule in selection.rules]
    return (" or " if selection.any_of else " and ").join(texts)


def _describe_rule(rule: DayRule) -> str:
    if isinstance(rule, DaysOfMonth):
        if len(rule.days) == 31:
            return "every day"
        return "on day " + ",".join(str(day) for day in sorted(rule.days)) + " of the month"
    if isinstance(rule, LastDayOfMonth):
        return "on the last day of the month"
    if isinstance(rule, LastWeekdayOfMonth):
        return "on the last weekday (MON-FRI) of the month"
    if isinstance(rule, NearestWeekday):
        return f"on the weekday nearest day {rule.day} of the month"
    if isinstance(rule, Weekdays):
        if len(rule.weekdays) == 7:
            return "every day"
        names = ",".join(WEEKDAY_ABBREVIATIONS[day] for day in sorted(rule.weekdays))
        return f"on {names}"
    if isinstance(rule, LastOfWeekday):
        return f"on the last {WEEKDAY_ABBREVIATIONS[rule.weekday]} of the month"
    ordinal = ("first", "second", "third", "fourth", "fifth")[rule.nth - 1]
    return f"on the {ordinal} {WEEKDAY_ABBREVIATIONS[rule.weekday]} of the month"

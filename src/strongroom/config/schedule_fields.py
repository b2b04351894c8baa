"""Parse the fields of a cron expression into sets of values and day rules.

Two dialects share this code: AWS ``cron(...)`` (the EventBridge / Quartz rules: six
fields, day-of-week 1=SUN … 7=SAT, ``? L W #``, ranges that wrap around) and the classic
5-field Vixie line (day-of-week 0 or 7 = SUN, no ``? L W #``, ranges never wrap).

Every function raises :class:`~strongroom.errors.ConfigError` naming the field and the
offending value; nothing here reads a clock or a file.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from typing import Literal

from strongroom.errors import ConfigError

Dialect = Literal["aws", "vixie"]

MONTH_NAMES = {
    name.upper(): number for number, name in enumerate(calendar.month_abbr) if number > 0
}
AWS_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
VIXIE_DAY_NAMES = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
WEEKDAY_ABBREVIATIONS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
"""Indexed by Python's ``date.weekday()`` (Monday is 0)."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a dialect: its name in messages, its bounds, names and allowed syntax."""

    name: str
    low: int
    high: int
    names: dict[str, int]
    specials: str
    """The characters of the AWS wildcard table this field allows besides digits."""
    wraps: bool
    """Whether ``a-b`` with ``a > b`` wraps around (Quartz / AWS), or is an error (Vixie)."""
    open_end: int | None = None
    """Where ``n/step`` stops if not at ``high`` (Vixie day-of-week: 6, 7 only repeats SUN)."""

    @property
    def bounds(self) -> str:
        """The valid range as text for messages, e.g. ``1-7 (SUN-SAT)``."""
        text = f"{self.low}-{self.high}"
        if self.names:
            first, last = next(iter(self.names)), list(self.names)[-1]
            text += f" or {first}-{last}"
        return text


AWS_FIELDS = (
    FieldSpec("minutes", 0, 59, {}, ",-*/", wraps=True),
    FieldSpec("hours", 0, 23, {}, ",-*/", wraps=True),
    FieldSpec("day-of-month", 1, 31, {}, ",-*?/LW", wraps=True),
    FieldSpec("month", 1, 12, MONTH_NAMES, ",-*/", wraps=True),
    FieldSpec("day-of-week", 1, 7, AWS_DAY_NAMES, ",-*?L#", wraps=True),
    FieldSpec("year", 1970, 2199, {}, ",-*/", wraps=False),
)
VIXIE_FIELDS = (
    FieldSpec("minute", 0, 59, {}, ",-*/", wraps=False),
    FieldSpec("hour", 0, 23, {}, ",-*/", wraps=False),
    FieldSpec("day-of-month", 1, 31, {}, ",-*/", wraps=False),
    FieldSpec("month", 1, 12, MONTH_NAMES, ",-*/", wraps=False),
    FieldSpec("day-of-week", 0, 7, VIXIE_DAY_NAMES, ",-*/", wraps=False, open_end=6),
)


class FieldErrors:
    """Builds the one kind of error this module raises, with the whole expression in it."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def error(self, field: str, value: str, problem: str, hint: str) -> ConfigError:
        """Return a ConfigError: ``schedule '<expr>': <field> value '<value>' <problem>``."""
        label = field if field.endswith(" value") else f"{field} value"
        return ConfigError(f"schedule {self.expression!r}: {label} {value!r} {problem}", hint=hint)


# --- day rules -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaysOfMonth:
    """Plain days of the month; days the month does not have never match."""

    days: frozenset[int]

    def days_in(self, first_weekday: int, length: int) -> frozenset[int]:
        """Return the matching days of a month starting on ``first_weekday`` (Monday=0)."""
        return frozenset(day for day in self.days if day <= length)


@dataclass(frozen=True, slots=True)
class LastDayOfMonth:
    """``L`` in day-of-month."""

    def days_in(self, first_weekday: int, length: int) -> frozenset[int]:
        """Return the last day of the month."""
        return frozenset((length,))


@dataclass(frozen=True, slots=True)
class LastWeekdayOfMonth:
    """``LW``: the last Monday-to-Friday day of the month."""

    def days_in(self, first_weekday: int, length: int) -> frozenset[int]:
        """Return the last weekday of the month."""
        day = length
        while (first_weekday + day - 1) % 7 >= 5:
            day -= 1
        return frozenset((day,))


@dataclass(frozen=True, slots=True)
class NearestWeekday:
    """``nW``: the weekday nearest to day n, never crossing into another month (Quartz)."""

    day: int

    def days_in(self, first_weekday: int, length: int) -> frozenset[int]:
        """Return the nearest weekday to ``day``, or nothing if the month is too short."""
        if self.day > length:
            return frozenset()
        weekday = (first_weekday + self.day - 1) % 7
        if weekday == 5:  # Saturday: the Friday before, unless that is last month
            return frozenset((self.day + 2 if self.day == 1 else self.day - 1,))
        if weekday == 6:  # Sunday: the Monday after, unless that is next month
            return frozenset((self.day - 2 if self.day == length else self.day + 1,))
        return frozenset((self.day,))


@dataclass(frozen=True, slots=True)
class Weekdays:
    """Days whose weekday (Python numbering, Monday=0) is in the set."""

    weekdays: frozenset[int]

    def days_in(self, first_weekday: int, length: int) -> frozenset[int]:
        """Return every day of the month that falls on one of the weekdays."""
        return frozenset(
            day for day in range(1, length + 1) if (first_weekday + day - 1) % 7 in self.weekdays
        )


@dataclass(frozen=True, slots=True)
class LastOfWeekday:
    """``nL`` in day-of-week: the last such weekday of the month (``6L``: last Friday)."""

    weekday: int

    def days_in(self, first_weekday: int, length: int) -> frozenset[int]:
        """Return the last day of the month falling on ``weekday``."""
        last_weekday = (first_weekday + length - 1) % 7
        return frozenset((length - (last_weekday - self.weekday) % 7,))


@dataclass(frozen=True, slots=True)
class NthWeekday:
    """``n#k`` in day-of-week: the k-th such weekday of the month, if the month has one."""

    weekday: int
    nth: int

    def days_in(self, first_weekday: int, length: int) -> frozenset[int]:
        """Return the k-th ``weekday`` of the month, or nothing (a fifth one may not exist)."""
        day = 1 + (self.weekday - first_weekday) % 7 + 7 * (self.nth - 1)
        return frozenset((day,)) if day <= length else frozenset()


DayRule = (
    DaysOfMonth
    | LastDayOfMonth
    | LastWeekdayOfMonth
    | NearestWeekday
    | Weekdays
    | LastOfWeekday
    | NthWeekday
)


# --- generic value lists -----------------------------------------------------------------


def parse_values(text: str, spec: FieldSpec, errors: FieldErrors) -> frozenset[int]:
    """Expand a list such as ``0,15-20,*/10`` into the set of values it names.

    Items are ``*``, ``n``, ``a-b`` and any of those followed by ``/step``; ``n/step``
    means ``n`` to the field's maximum. A range with ``a > b`` wraps around where the
    dialect allows it (``22-2`` in hours is 22, 23, 0, 1, 2).
    """
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, spec, errors))
    return frozenset(values)


def _parse_item(item: str, spec: FieldSpec, errors: FieldErrors) -> list[int]:
    if not item:
        raise errors.error(spec.name, item, "is empty", "Remove the stray comma.")
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if "/" not in spec.specials:
            raise errors.error(
                spec.name,
                item,
                "uses '/', which AWS does not allow in this field",
                "List the values instead, e.g. MON,WED,FRI.",
            )
        step = _number(step_text, spec, errors, item, what="step", names=False)
        size = spec.high - spec.low + 1
        if not 1 <= step <= size:
            raise errors.error(
                spec.name, item, f"has a step outside 1-{size}", "Use a step such as */5."
            )
    if base == "*":
        start, end = spec.low, spec.high
    elif "-" in base:
        start_text, _, end_text = base.partition("-")
        start = _number(start_text, spec, errors, item)
        end = _number(end_text, spec, errors, item)
        if start > end and not spec.wraps:
            raise errors.error(
                spec.name,
                item,
                "is a range that runs backwards",
                f"Write the smaller value first, or list the values; valid: {spec.bounds}.",
            )
    else:
        start = _number(base, spec, errors, item)
        end = max(start, spec.open_end or spec.high) if slash else start
    if start <= end:
        return list(range(start, end + 1, step))
    # A wrapped range: walk start..high then low..end, taking every step-th value.
    ordered = [*range(start, spec.high + 1), *range(spec.low, end + 1)]
    return ordered[::step]


def _number(
    text: str,
    spec: FieldSpec,
    errors: FieldErrors,
    item: str,
    *,
    what: str = "value",
    names: bool = True,
) -> int:
    upper = text.upper()
    if names and upper in spec.names:
        return spec.names[upper]
    if not (text.isascii() and text.isdigit()):
        allowed = f"{spec.bounds}, * , -"
        extra = "".join(f" {char}" for char in spec.specials if char not in ",-*")
        raise errors.error(
            spec.name,
            item,
            f"is not a valid {what}",
            f"Use {allowed}{extra} in the {spec.name} field.",
        )
    number = int(text)
    if what == "value" and not spec.low <= number <= spec.high:
        raise errors.error(spec.name, item, f"is out of range {spec.bounds}", _range_hint(spec))
    return number


def _range_hint(spec: FieldSpec) -> str:
    if spec.name == "day-of-week" and spec.low == 1:
        return "AWS numbers days 1=SUN, 2=MON … 7=SAT (not 0-6); or use SUN-SAT."
    if spec.name == "day-of-week":
        return "Cron numbers days 0=SUN … 6=SAT (7 is SUN too); or use SUN-SAT."
    return f"Use a value in {spec.bounds}."


# --- the day fields ----------------------------------------------------------------------


def parse_aws_day_of_month(text: str, errors: FieldErrors) -> DayRule | None:
    """Parse an AWS day-of-month field: ``?`` (None), ``L``, ``LW``, ``nW`` or a value list."""
    spec = AWS_FIELDS[2]
    upper = text.upper()
    if upper == "?":
        return None
    if upper == "L":
        return LastDayOfMonth()
    if upper == "LW":
        return LastWeekdayOfMonth()
    if upper.endswith("W") and "," not in upper and "-" not in upper and "/" not in upper:
        return NearestWeekday(_number(upper[:-1], spec, errors, text))
    if "L" in upper or "W" in upper:
        raise errors.error(
            spec.name,
            text,
            "uses L or W in a way AWS does not support",
            "L, LW and nW (e.g. 15W) must stand alone in day-of-month; L-n is not supported.",
        )
    if "?" in upper:
        raise errors.error(spec.name, text, "mixes ? with values", "Use ? on its own.")
    return DaysOfMonth(parse_values(text, spec, errors))


def parse_aws_day_of_week(text: str, errors: FieldErrors) -> DayRule | None:
    """Parse an AWS day-of-week field: ``?`` (None), ``L`` (= SAT), ``nL``, ``n#k`` or a list."""
    spec = AWS_FIELDS[4]
    upper = text.upper()
    if upper == "?":
        return None
    if upper == "L":
        return Weekdays(frozenset((_aws_to_python_weekday(7),)))
    if "#" in upper:
        day_text, _, nth_text = upper.partition("#")
        if "," in upper or "-" in day_text or not (nth_text.isascii() and nth_text.isdigit()):
            raise errors.error(
                spec.name,
                text,
                "is not a valid n#k",
                "Use one day and its number in the month alone, e.g. 3#2 (second Tuesday).",
            )
        nth = int(nth_text)
        if not 1 <= nth <= 5:
            raise errors.error(
                spec.name, text, "asks for an occurrence outside 1-5", "Use 1-5 after the #."
            )
        weekday = _number(day_text, spec, errors, text)
        return NthWeekday(_aws_to_python_weekday(weekday), nth)
    if upper.endswith("L") and "," not in upper and "-" not in upper:
        weekday = _number(upper[:-1], spec, errors, text)
        return LastOfWeekday(_aws_to_python_weekday(weekday))
    if "L" in upper:  # no day name contains an L, so this is L inside a list or range
        raise errors.error(
            spec.name,
            text,
            "uses L in a way AWS does not support",
            "Use L alone (Saturday) or nL alone (6L: last Friday of the month).",
        )
    if "?" in upper:
        raise errors.error(spec.name, text, "mixes ? with values", "Use ? on its own.")
    values = parse_values(text, spec, errors)
    return Weekdays(frozenset(_aws_to_python_weekday(value) for value in values))


def parse_vixie_day_of_week(text: str, errors: FieldErrors) -> Weekdays:
    """Parse a Vixie day-of-week list (0 and 7 are Sunday)."""
    values = parse_values(text, VIXIE_FIELDS[4], errors)
    return Weekdays(frozenset((value - 1) % 7 for value in values))


def _aws_to_python_weekday(value: int) -> int:
    """1=SUN … 7=SAT to Python's Monday=0 … Sunday=6."""
    return (value - 2) % 7

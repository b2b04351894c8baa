"""Schedule expressions: AWS ``cron(...)`` and ``rate(...)``, and 5-field Vixie cron.

:func:`parse_schedule` turns the text of a rule's ``ScheduleExpression`` into a
:class:`Schedule`, which answers "when does this fire next?" in the rule's
``ScheduleExpressionTimezone``. Pure: no clock, no I/O; every mistake raises
:class:`~strongroom.errors.ConfigError` naming the field and the value.

The semantics (AWS versus Vixie, daylight saving, rate anchoring) are in
``docs/schedules.md``; in short:

- ``cron(m h dom mon dow year)`` follows EventBridge: day-of-week 1=SUN … 7=SAT, exactly
  one of day-of-month / day-of-week is ``?``; a wall time skipped by a spring-forward
  jump does not fire, a repeated one fires once (its first occurrence).
- ``m h dom mon dow`` follows Vixie cron: 0 or 7 = SUN; when both day fields are
  restricted a day matching either fires; fixed-time lines whose time falls in a
  spring-forward gap fire at the first minute after it.
- ``rate(N unit)`` fires every N minutes/hours/days of elapsed time at
  ``anchor + k × interval`` (anchor: the Unix epoch unless given), whatever the timezone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from strongroom.config.schedule_base import Schedule, require_aware, resolve_timezone
from strongroom.config.schedule_cron import CronSchedule, DaySelection
from strongroom.config.schedule_fields import (
    AWS_FIELDS,
    VIXIE_FIELDS,
    DayRule,
    DaysOfMonth,
    FieldErrors,
    NearestWeekday,
    parse_aws_day_of_month,
    parse_aws_day_of_week,
    parse_values,
    parse_vixie_day_of_week,
)
from strongroom.errors import ConfigError

__all__ = [
    "CronSchedule",
    "RateSchedule",
    "Schedule",
    "parse_schedule",
    "resolve_timezone",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The default phase of ``rate()`` schedules: restart-proof and the same on every host."""

VIXIE_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
DAYS_IN_MONTH_AT_MOST = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def parse_schedule(expression: str) -> Schedule:
    """Parse a schedule expression: ``cron(...)``, ``rate(...)`` or a 5-field cron line.

    Given the text as written in the configuration; returns a :class:`Schedule`.
    Raises ConfigError naming the field and the value that is wrong, with a hint.
    """
    text = expression.strip()
    errors = FieldErrors(expression)
    if text.startswith("cron(") and text.endswith(")"):
        return _parse_aws(text[len("cron(") : -1], errors)
    if text.startswith("rate(") and text.endswith(")"):
        return _parse_rate(text[len("rate(") : -1], errors)
    if text.lower() in VIXIE_MACROS:
        return _parse_vixie(VIXIE_MACROS[text.lower()], errors)
    if "(" not in text and len(text.split()) == 5:
        return _parse_vixie(text, errors)
    if "(" not in text and len(text.split()) == 6:
        hint = "Wrap an AWS expression in cron(...); a seconds field is not supported."
    elif text.lower().startswith(("cron(", "rate(")):
        hint = "Write cron(...) or rate(...) in lower case with the closing parenthesis."
    else:
        hint = "Use cron(m h dom mon dow year), rate(N minutes|hours|days) or 'm h dom mon dow'."
    raise errors.error("expression", expression, "is not a schedule strongroom knows", hint)


# --- AWS cron() --------------------------------------------------------------------------


def _parse_aws(inner: str, errors: FieldErrors) -> CronSchedule:
    fields = inner.split()
    if len(fields) != 6:
        raise errors.error(
            "cron()",
            inner,
            f"has {len(fields)} fields, not 6",
            "AWS cron() takes: minutes hours day-of-month month day-of-week year, "
            "e.g. cron(0 3 * * ? *).",
        )
    _refuse_misplaced(fields, AWS_FIELDS, errors)
    minutes = parse_values(fields[0], AWS_FIELDS[0], errors)
    hours = parse_values(fields[1], AWS_FIELDS[1], errors)
    day_of_month = parse_aws_day_of_month(fields[2], errors)
    months = parse_values(fields[3], AWS_FIELDS[3], errors)
    day_of_week = parse_aws_day_of_week(fields[4], errors)
    years = parse_values(fields[5], AWS_FIELDS[5], errors)
    rule: DayRule
    if day_of_month is not None and day_of_week is None:
        rule = day_of_month
        _refuse_impossible_day(rule, months, fields[2], fields[3], errors)
    elif day_of_week is not None and day_of_month is None:
        rule = day_of_week
    else:
        both = "are both ?" if day_of_month is None else "are both given"
        raise ConfigError(
            f"schedule {errors.expression!r}: day-of-month value {fields[2]!r} and "
            f"day-of-week value {fields[4]!r} {both}",
            hint="AWS needs exactly one of them to be ?: e.g. cron(0 3 * * ? *) for every "
            "day, cron(0 3 ? * MON *) for Mondays.",
        )
    return CronSchedule(
        expression=errors.expression,
        dialect="aws",
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        day_selection=DaySelection((rule,), any_of=False),
        months=tuple(sorted(months)),
        years=tuple(sorted(years)),
        gap_policy="skip",
        fields=tuple(fields),
    )


# --- Vixie -------------------------------------------------------------------------------


def _parse_vixie(line: str, errors: FieldErrors) -> CronSchedule:
    fields = line.split()
    _refuse_misplaced(fields, VIXIE_FIELDS, errors)
    minutes = parse_values(fields[0], VIXIE_FIELDS[0], errors)
    hours = parse_values(fields[1], VIXIE_FIELDS[1], errors)
    day_of_month = DaysOfMonth(parse_values(fields[2], VIXIE_FIELDS[2], errors))
    months = parse_values(fields[3], VIXIE_FIELDS[3], errors)
    day_of_week = parse_vixie_day_of_week(fields[4], errors)
    # ISC cron: a day field *starting* with '*' (even '*/2') counts as unrestricted, and
    # a day fires on either field only when both are restricted.
    dom_star, dow_star = fields[2].startswith("*"), fields[4].startswith("*")
    any_of = not (dom_star or dow_star)
    rules: list[DayRule] = []
    if any_of or len(day_of_month.days) < 31:
        rules.append(day_of_month)
    if any_of or len(day_of_week.weekdays) < 7:
        rules.append(day_of_week)
    if not any_of and rules == [day_of_month]:
        _refuse_impossible_day(day_of_month, months, fields[2], fields[3], errors)
    fixed_time = not (fields[0].startswith("*") or fields[1].startswith("*"))
    return CronSchedule(
        expression=errors.expression,
        dialect="vixie",
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        day_selection=DaySelection(tuple(rules), any_of=any_of),
        months=tuple(sorted(months)),
        years=None,
        gap_policy="shift" if fixed_time else "skip",
        fields=tuple(fields),
    )


def _refuse_misplaced(fields: list[str], specs: tuple[object, ...], errors: FieldErrors) -> None:
    """Name the field when ``?`` or ``#`` appear where the dialect does not allow them."""
    aws = len(specs) == 6
    for index, text in enumerate(fields):
        spec = AWS_FIELDS[index] if aws else VIXIE_FIELDS[index]
        for char in "?#":
            if char in text and char not in spec.specials:
                where = (
                    "only in day-of-month and day-of-week" if char == "?" else "only in day-of-week"
                )
                hint = (
                    f"AWS allows {char!r} {where}."
                    if aws
                    else "? L W # exist only in AWS cron(...) expressions, not 5-field cron."
                )
                raise errors.error(spec.name, text, f"uses {char!r} where it is not allowed", hint)
    if not aws and ("L" in fields[2].upper() + fields[4].upper() or "W" in fields[2].upper()):
        # No day name contains an L, and day-of-month has no names at all.
        index = 2 if any(char in fields[2].upper() for char in "LW") else 4
        raise errors.error(
            VIXIE_FIELDS[index].name,
            fields[index],
            "uses L or W, which 5-field cron does not have",
            "Write it as AWS cron(...), e.g. cron(0 0 L * ? *) for the last day of the month.",
        )


def _refuse_impossible_day(
    rule: DayRule, months: frozenset[int], day_text: str, month_text: str, errors: FieldErrors
) -> None:
    """Refuse a day-of-month that no selected month has (``30`` in ``FEB``): it never fires."""
    longest = max(DAYS_IN_MONTH_AT_MOST[month] for month in months)
    if isinstance(rule, DaysOfMonth):
        earliest = min(rule.days)
    elif isinstance(rule, NearestWeekday):
        earliest = rule.day
    else:
        return
    if earliest > longest:
        raise errors.error(
            "day-of-month",
            day_text,
            f"never occurs in month {month_text!r}, so the schedule would never fire",
            f"Those months have at most {longest} days; use L for the last day.",
        )


# --- rate() ------------------------------------------------------------------------------


def _parse_rate(inner: str, errors: FieldErrors) -> RateSchedule:
    parts = inner.split()
    if len(parts) != 2:
        raise errors.error(
            "rate()", inner, "is not 'value unit'", "Write e.g. rate(5 minutes) or rate(1 day)."
        )
    value_text, unit = parts
    if not (value_text.isascii() and value_text.isdigit()) or int(value_text) == 0:
        raise errors.error(
            "rate value", value_text, "is not a positive whole number", "Use e.g. rate(15 minutes)."
        )
    value = int(value_text)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in RATE_UNITS:
        raise errors.error(
            "rate unit", unit, "is not minute(s), hour(s) or day(s)", "Use e.g. rate(6 hours)."
        )
    expected = singular if value == 1 else f"{singular}s"
    if unit != expected:
        raise errors.error(
            "rate unit",
            unit,
            f"does not agree with the value {value}",
            f"AWS requires rate({value} {expected}): singular for 1, plural otherwise.",
        )
    try:
        interval = RATE_UNITS[singular] * value
    except OverflowError as exc:
        raise errors.error(
            "rate value", value_text, "is too large", "Use a rate below a million days."
        ) from exc
    return RateSchedule(expression=errors.expression, value=value, unit=singular, interval=interval)


@dataclass(frozen=True, slots=True)
class RateSchedule(Schedule):
    """``rate(N unit)``: fires every ``interval`` of elapsed time, whatever the timezone.

    Fire times are ``anchor + k × interval`` for every integer k: the anchor fixes the
    phase only. Without an anchor it is the Unix epoch, so ``rate(6 hours)`` fires at
    00:00, 06:00, 12:00 and 18:00 UTC on every host and after every restart. Pass the
    rule's creation time to count from there, as EventBridge does. Days are 24 hours:
    across a daylight-saving change the local wall time of a ``rate(1 day)`` moves by
    the change.
    """

    expression: str
    value: int
    unit: str
    interval: timedelta

    @property
    def kind(self) -> str:
        """Always ``"rate"``."""
        return "rate"

    def next_after(
        self, after: datetime, tz: ZoneInfo | str = "UTC", *, anchor: datetime | None = None
    ) -> datetime | None:
        """Return ``anchor + k × interval`` for the smallest k past ``after``, in ``tz``.

        Raises ConfigError for a naive ``after`` or ``anchor`` or an unknown timezone;
        returns None past the year 9999.
        """
        zone = resolve_timezone(tz)
        after_utc = require_aware(after, "after")
        anchor_utc = EPOCH if anchor is None else require_aware(anchor, "anchor")
        steps = (after_utc - anchor_utc) // self.interval + 1
        try:
            return (anchor_utc + steps * self.interval).astimezone(zone)
        except OverflowError:
            return None

    def describe(self) -> str:
        """Return e.g. ``every 6 hours``."""
        return f"every {self.unit}" if self.value == 1 else f"every {self.value} {self.unit}s"

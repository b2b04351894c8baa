"""Property tests: fire times against an independent brute-force matcher (and croniter).

Hypothesis builds each expression from parts, so the test knows what every field means
without parsing the text: the oracle below never calls strongroom's parser. It checks a
wall time field by field and a day by walking the calendar, then scans minute by minute
in UTC, mapping each minute to the rule's wall clock the way the docs promise:

- a wall time fires at its first occurrence only (``fold == 0``);
- a wall time skipped by a spring-forward gap fires at the first minute after the gap
  for fixed-time Vixie lines, and never for AWS expressions or wildcard Vixie lines.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from strongroom.config.schedule import parse_schedule
from strongroom.errors import ConfigError

ONE_MINUTE = timedelta(minutes=1)
ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kolkata",  # +05:30, no DST
)
SCAN_WINDOW = timedelta(days=3)
MONTH_NAMES = {number: calendar.month_abbr[number].upper() for number in range(1, 13)}
AWS_DAY_NAMES = {1: "SUN", 2: "MON", 3: "TUE", 4: "WED", 5: "THU", 6: "FRI", 7: "SAT"}
VIXIE_DAY_NAMES = {0: "SUN", 1: "MON", 2: "TUE", 3: "WED", 4: "THU", 5: "FRI", 6: "SAT"}
LONGEST_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30}
LONGEST_MONTH[12] = 31

DayPredicate = Callable[[date], bool]


# --- the oracle ----------------------------------------------------------------------------


@dataclass
class Case:
    """An expression and what it means, built side by side."""

    text: str
    minutes: frozenset[int] = field(repr=False)
    hours: frozenset[int] = field(repr=False)
    months: frozenset[int] = field(repr=False)
    years: frozenset[int] | None = field(repr=False)
    day: DayPredicate = field(repr=False, kw_only=True)
    fixed_time_vixie: bool = False
    never: bool = False
    """The day-of-month can never occur in the chosen months: the parser must refuse it."""
    known_days: dict[date, bool] = field(default_factory=dict, repr=False)

    def matches(self, wall: datetime) -> bool:
        return (
            wall.second == 0
            and wall.microsecond == 0
            and wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and (self.years is None or wall.year in self.years)
            and self.on_day(wall.date())
        )

    def on_day(self, day: date) -> bool:
        if day not in self.known_days:
            self.known_days[day] = self.day(day)
        return self.known_days[day]

    def fires_at(self, instant: datetime, zone: ZoneInfo) -> bool:
        """Tell whether the rule fires at this UTC instant, by the documented DST rules."""
        local = instant.astimezone(zone)
        wall = local.replace(tzinfo=None)
        if local.fold == 0 and self.matches(wall):
            return True
        if not self.fixed_time_vixie:
            return False
        previous = (instant - ONE_MINUTE).astimezone(zone).replace(tzinfo=None)
        skipped = previous + ONE_MINUTE
        while skipped < wall:  # wall times the clock jumped over
            if self.matches(skipped):
                return True
            skipped += ONE_MINUTE
        return False

    def scan(self, after: datetime, until: datetime, zone: ZoneInfo) -> list[datetime]:
        """Every fire instant in (after, until], found minute by minute."""
        instant = after.astimezone(UTC).replace(second=0, microsecond=0) + ONE_MINUTE
        found = []
        while instant <= until:
            if self.fires_at(instant, zone):
                found.append(instant)
            instant += ONE_MINUTE
        return found


def month_days(day: date) -> list[date]:
    length = calendar.monthrange(day.year, day.month)[1]
    return [day.replace(day=number) for number in range(1, length + 1)]


def aws_weekday(day: date) -> int:
    return day.isoweekday() % 7 + 1  # Sunday (7) -> 1, Monday (1) -> 2, Saturday (6) -> 7


def last_day(day: date) -> bool:
    return (day + timedelta(days=1)).month != day.month


def last_weekday(day: date) -> bool:
    return day.weekday() < 5 and all(
        later.weekday() >= 5 for later in month_days(day) if later > day
    )


def nearest_weekday(target: int) -> DayPredicate:
    def predicate(day: date) -> bool:
        weekdays = [other.day for other in month_days(day) if other.weekday() < 5]
        if target > len(month_days(day)):
            return False
        return day.day == min(weekdays, key=lambda other: abs(other - target))

    return predicate


# --- strategies ----------------------------------------------------------------------------


def sequence(low: int, high: int, start: int, end: int) -> list[int]:
    """The values from start to end, wrapping past high back to low."""
    if start <= end:
        return list(range(start, end + 1))
    return list(range(start, high + 1)) + list(range(low, end + 1))


@st.composite
def value_list(
    draw: st.DrawFn,
    low: int,
    high: int,
    *,
    wraps: bool,
    names: dict[int, str] | None = None,
    draw_low: int | None = None,
    draw_high: int | None = None,
    star: bool = True,
    steps: bool = True,
    open_end: int | None = None,
) -> tuple[str, frozenset[int]]:
    """A field such as ``*``, ``5``, ``1-3,20/7`` and the set of values it means."""
    if star and draw(st.integers(0, 4)) == 0:
        return "*", frozenset(range(low, high + 1))
    numbers = st.integers(
        low if draw_low is None else draw_low, high if draw_high is None else draw_high
    )

    def show(value: int) -> str:
        if names and value in names and draw(st.booleans()):
            return draw(st.sampled_from([names[value], names[value].lower()]))
        return str(value)

    items, values = [], set()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "range", "step"] if steps else ["value", "range"]))
        if kind == "value":
            value = draw(numbers)
            items.append(show(value))
            values.add(value)
            continue
        start, end = draw(numbers), draw(numbers)
        if not wraps and start > end:
            start, end = end, start
        if kind == "range":
            items.append(f"{show(start)}-{show(end)}")
            values.update(sequence(low, high, start, end))
            continue
        step = draw(st.integers(1, high - low + 1))
        base = draw(st.sampled_from(["*", "single", "range"]))
        if base == "*":
            items.append(f"*/{step}")
            values.update(sequence(low, high, low, high)[::step])
        elif base == "single":
            items.append(f"{start}/{step}")
            values.update(sequence(low, high, start, max(start, open_end or high))[::step])
        else:
            items.append(f"{start}-{end}/{step}")
            values.update(sequence(low, high, start, end)[::step])
    return ",".join(items), frozenset(values)


@st.composite
def aws_days(draw: st.DrawFn, months: frozenset[int]) -> tuple[str, str, DayPredicate, bool]:
    """(day-of-month, day-of-week, predicate, never) for an AWS expression."""
    kind = draw(st.sampled_from(["list", "L", "LW", "W", "weekdays", "Lday", "nL", "nth"]))
    longest = max(LONGEST_MONTH[month] for month in months)
    if kind == "list":
        text, days = draw(value_list(1, 31, wraps=True))
        return text, "?", (lambda day: day.day in days), min(days) > longest
    if kind == "L":
        return "L", "?", last_day, False
    if kind == "LW":
        return "LW", "?", last_weekday, False
    if kind == "W":
        target = draw(st.integers(1, 31))
        return f"{target}W", "?", nearest_weekday(target), target > longest
    if kind == "weekdays":
        # AWS allows no '/' in day-of-week.
        text, weekdays = draw(value_list(1, 7, wraps=True, names=AWS_DAY_NAMES, steps=False))
        return "?", text, (lambda day: aws_weekday(day) in weekdays), False
    if kind == "Lday":
        return "?", "L", (lambda day: aws_weekday(day) == 7), False
    weekday = draw(st.integers(1, 7))
    shown = draw(st.sampled_from([str(weekday), AWS_DAY_NAMES[weekday]]))
    if kind == "nL":
        return (
            "?",
            f"{shown}L",
            lambda day: (
                aws_weekday(day) == weekday and (day + timedelta(days=7)).month != day.month
            ),
            False,
        )
    nth = draw(st.integers(1, 5))
    return (
        "?",
        f"{shown}#{nth}",
        lambda day: aws_weekday(day) == weekday and (day.day - 1) // 7 + 1 == nth,
        False,
    )


@st.composite
def aws_cases(draw: st.DrawFn, *, year_low: int = 2015, year_high: int = 2045) -> Case:
    minute_text, minutes = draw(value_list(0, 59, wraps=True))
    hour_text, hours = draw(value_list(0, 23, wraps=True))
    month_text, months = draw(value_list(1, 12, wraps=True, names=MONTH_NAMES))
    year_text, years = draw(
        value_list(1970, 2199, wraps=False, draw_low=year_low, draw_high=year_high)
    )
    dom, dow, predicate, never = draw(aws_days(months))
    return Case(
        text=f"cron({minute_text} {hour_text} {dom} {month_text} {dow} {year_text})",
        minutes=minutes,
        hours=hours,
        months=months,
        years=years,
        day=predicate,
        never=never,
    )


@st.composite
def vixie_cases(draw: st.DrawFn) -> Case:
    minute_text, minutes = draw(value_list(0, 59, wraps=False))
    hour_text, hours = draw(value_list(0, 23, wraps=False))
    dom_text, days = draw(value_list(1, 31, wraps=False))
    month_text, months = draw(value_list(1, 12, wraps=False, names=MONTH_NAMES))
    dow_text, weekdays = draw(value_list(0, 7, wraps=False, names=VIXIE_DAY_NAMES, open_end=6))
    sundays_too = {value % 7 for value in weekdays}

    def on_day(day: date) -> bool:
        by_date, by_weekday = day.day in days, day.isoweekday() % 7 in sundays_too
        if dom_text.startswith("*") or dow_text.startswith("*"):
            return by_date and by_weekday
        return by_date or by_weekday

    # A day-of-month alone (the day-of-week is every day and one field starts with '*')
    # that no chosen month has can never fire: the parser refuses it.
    star = dom_text.startswith("*") or dow_text.startswith("*")
    dom_alone = star and len(sundays_too) == 7
    return Case(
        text=f"{minute_text} {hour_text} {dom_text} {month_text} {dow_text}",
        minutes=minutes,
        hours=hours,
        months=months,
        years=None,
        day=on_day,
        fixed_time_vixie=not (minute_text.startswith("*") or hour_text.startswith("*")),
        never=dom_alone and min(days) > max(LONGEST_MONTH[month] for month in months),
    )


@cache
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """The UTC instants of 2025 where the zone's offset changes (to the hour or half hour)."""
    zone = ZoneInfo(zone_name)
    found, instant = [], datetime(2025, 1, 1, tzinfo=UTC)
    offset = instant.astimezone(zone).utcoffset()
    while instant.year == 2025:
        instant += timedelta(minutes=15)
        current = instant.astimezone(zone).utcoffset()
        if current != offset:
            found.append(instant)
            offset = current
    return tuple(found)


@st.composite
def zone_and_after(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    near = transitions(zone)
    if len(near) > 0 and draw(st.booleans()):
        moment = draw(st.sampled_from(near)) + timedelta(
            seconds=draw(st.integers(-6 * 3600, 3 * 3600))
        )
    else:
        moment = draw(
            st.datetimes(datetime(2020, 1, 1), datetime(2034, 12, 31), timezones=st.just(UTC))  # noqa: DTZ001
        )
    return zone, moment


# --- the properties ------------------------------------------------------------------------


def check_against_oracle(case: Case, zone_name: str, after: datetime) -> None:
    try:
        schedule = parse_schedule(case.text)
    except ConfigError:
        assert case.never, f"refused a valid expression {case.text}"
        return
    assert not case.never, f"accepted {case.text}, which never fires"
    zone = ZoneInfo(zone_name)
    count = 5
    times = schedule.next_fire_times(after, count, zone_name)
    instants = [moment.astimezone(UTC) for moment in times]
    assert all(moment.tzinfo == zone for moment in times)
    assert all(earlier < later for earlier, later in itertools.pairwise(instants))
    assert all(instant > after for instant in instants)
    for instant in instants:
        assert case.fires_at(instant, zone), f"{case.text} does not fire at {instant}"
    until = after + SCAN_WINDOW
    if len(instants) == count:
        until = min(until, instants[-1])
    assert case.scan(after, until, zone) == [instant for instant in instants if instant <= until]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=aws_cases(), zone_and_moment=zone_and_after())
def test_aws_fire_times_match_a_brute_force_scan(
    case: Case, zone_and_moment: tuple[str, datetime]
) -> None:
    check_against_oracle(case, *zone_and_moment)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=vixie_cases(), zone_and_moment=zone_and_after())
def test_vixie_fire_times_match_a_brute_force_scan(
    case: Case, zone_and_moment: tuple[str, datetime]
) -> None:
    check_against_oracle(case, *zone_and_moment)


@st.composite
def every_day_cases(draw: st.DrawFn) -> Case:
    """Random minute and hour fields on every day: the cases a DST change can touch."""
    minute_text, minutes = draw(value_list(0, 59, wraps=False))
    hour_text, hours = draw(value_list(0, 23, wraps=False))
    vixie = draw(st.booleans())
    return Case(
        text=f"{minute_text} {hour_text} * * *"
        if vixie
        else f"cron({minute_text} {hour_text} * * ? *)",
        minutes=minutes,
        hours=hours,
        months=frozenset(range(1, 13)),
        years=None if vixie else frozenset(range(1970, 2200)),
        day=lambda day: True,
        fixed_time_vixie=vixie and not (minute_text.startswith("*") or hour_text.startswith("*")),
    )


@st.composite
def zone_and_transition(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from([zone for zone in ZONES if transitions(zone)]))
    moment = draw(st.sampled_from(transitions(zone)))
    return zone, moment + timedelta(seconds=draw(st.integers(-6 * 3600, 2 * 3600)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=every_day_cases(), zone_and_moment=zone_and_transition())
def test_fire_times_around_dst_changes_match_a_brute_force_scan(
    case: Case, zone_and_moment: tuple[str, datetime]
) -> None:
    check_against_oracle(case, *zone_and_moment)


@st.composite
def day_cases(draw: st.DrawFn) -> Case:
    """Once-a-day expressions, to test sparse day rules over years, not minutes."""
    case = draw(st.one_of(aws_cases(year_low=1970, year_high=2199), vixie_cases()))
    minute, hour = draw(st.integers(0, 59)), draw(st.integers(0, 23))
    fields = case.text.removeprefix("cron(").removesuffix(")").split()
    fields[0], fields[1] = str(minute), str(hour)
    text = " ".join(fields)
    case.text = f"cron({text})" if case.years is not None else text
    case.minutes, case.hours = frozenset((minute,)), frozenset((hour,))
    return case


@settings(max_examples=300, deadline=None)
@given(
    case=day_cases(),
    after=st.datetimes(datetime(1971, 1, 1), datetime(2190, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001
)
def test_day_rules_match_a_day_by_day_scan(case: Case, after: datetime) -> None:
    try:
        schedule = parse_schedule(case.text)
    except ConfigError:
        assert case.never
        return
    assert not case.never
    times = schedule.next_fire_times(after, 4, "UTC")
    (hour,), (minute,) = case.hours, case.minutes
    last = times[-1].date() if len(times) == 4 else date(2199, 12, 31)
    day, expected = after.date(), list[datetime]()
    while day <= last and len(expected) < 4:
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        if moment > after and case.matches(moment.replace(tzinfo=None)):
            expected.append(moment)
        day += timedelta(days=1)
    assert [moment.astimezone(UTC) for moment in times] == expected


RANGE = re.compile(r"(\w+)-(\w+)")
NAME_NUMBERS = {name: value for value, name in [*MONTH_NAMES.items(), *VIXIE_DAY_NAMES.items()]}


def number(text: str) -> int:
    return NAME_NUMBERS[text.upper()] if text.upper() in NAME_NUMBERS else int(text)


@settings(max_examples=200, deadline=None)
@given(
    case=vixie_cases(),
    after=st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001
)
def test_vixie_lines_agree_with_croniter_in_utc(case: Case, after: datetime) -> None:
    dom, dow = case.text.split()[2], case.text.split()[4]
    # ISC cron (and strongroom) call a day field unrestricted when it starts with '*' (so
    # '*/2' is); croniter decides by other rules. Compare only where the two agree.
    assume(all(text == "*" or "*" not in text for text in (dom, dow)))
    assume(not case.never)
    # croniter 7.0.0 reads a one-value range such as 5-5 (or 0-SUN) as '*'.
    assume(not any(len(set(map(number, pair))) == 1 for pair in RANGE.findall(case.text)))
    # croniter also turns a weekday step from 7 (Sunday, '7/1') into one from 0, every day;
    # ISC cron and strongroom read it as the one-value range 7-7.
    assume(not re.search(r"(^|,)7/", dow))
    ours = [
        moment.astimezone(UTC) for moment in parse_schedule(case.text).next_fire_times(after, 5)
    ]
    iterator = croniter(case.text, after)
    theirs = [iterator.get_next(datetime).astimezone(UTC) for _ in range(len(ours))]
    assert ours == theirs


@settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    vixie=st.booleans(),
)
def test_a_daily_rule_fires_once_per_day_for_a_whole_year(
    zone_name: str, minute: int, hour: int, vixie: bool
) -> None:
    zone = ZoneInfo(zone_name)
    text = f"{minute} {hour} * * *" if vixie else f"cron({minute} {hour} * * ? *)"
    start = datetime(2024, 12, 31, tzinfo=zone)
    times = parse_schedule(text).next_fire_times(start, 400, zone)
    this_year = [moment for moment in times if moment.year == 2025]
    days = [moment.date() for moment in this_year]
    assert len(days) == len(set(days))  # never twice a day, even when an hour repeats
    missing = []
    day = date(2025, 1, 1)
    while day.year == 2025:
        wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        if wall.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
            missing.append(day)  # the wall time falls in a spring-forward gap
        day += timedelta(days=1)
    # AWS skips a day whose wall time does not exist; Vixie runs it right after the gap.
    assert len(days) == 365 - (0 if vixie else len(missing))

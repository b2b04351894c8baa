"""Schedule expressions: AWS examples, the seed's rules, DST, rate anchoring, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from strongroom.config.schedule import (
    CronSchedule,
    RateSchedule,
    parse_schedule,
    resolve_timezone,
)
from strongroom.errors import ConfigError

# A Wednesday, mid-month, mid-minute: fire times must come strictly after it.
AFTER = datetime(2025, 1, 15, 12, 34, 56, tzinfo=UTC)


def fire_times(expression: str, count: int, after: datetime = AFTER, tz: str = "UTC") -> list[str]:
    return [
        moment.isoformat()
        for moment in parse_schedule(expression).next_fire_times(after, count, tz)
    ]


# --- the EventBridge "cron expressions" reference examples -----------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # 10:00 UTC every day
        ("cron(0 10 * * ? *)", ["2025-01-16T10:00:00+00:00", "2025-01-17T10:00:00+00:00"]),
        # 12:15 UTC every day
        ("cron(15 12 * * ? *)", ["2025-01-16T12:15:00+00:00", "2025-01-17T12:15:00+00:00"]),
        # 18:00 Monday to Friday: Wed, Thu, Fri, then Monday
        (
            "cron(0 18 ? * MON-FRI *)",
            [
                "2025-01-15T18:00:00+00:00",
                "2025-01-16T18:00:00+00:00",
                "2025-01-17T18:00:00+00:00",
                "2025-01-20T18:00:00+00:00",
            ],
        ),
        # 08:00 on the first day of every month
        ("cron(0 8 1 * ? *)", ["2025-02-01T08:00:00+00:00", "2025-03-01T08:00:00+00:00"]),
        # every 15 minutes
        (
            "cron(0/15 * * * ? *)",
            ["2025-01-15T12:45:00+00:00", "2025-01-15T13:00:00+00:00", "2025-01-15T13:15:00+00:00"],
        ),
        # every 10 minutes Monday to Friday
        ("cron(0/10 * ? * MON-FRI *)", ["2025-01-15T12:40:00+00:00", "2025-01-15T12:50:00+00:00"]),
        # every 5 minutes between 08:00 and 17:55 Monday to Friday
        (
            "cron(0/5 8-17 ? * MON-FRI *)",
            ["2025-01-15T12:35:00+00:00", "2025-01-15T12:40:00+00:00"],
        ),
        # every 30 minutes Monday to Friday from 22:00 ... (the AWS example of a wrapping range)
        (
            "cron(0/30 20-2 ? * MON-FRI *)",
            ["2025-01-15T20:00:00+00:00", "2025-01-15T20:30:00+00:00", "2025-01-15T21:00:00+00:00"],
        ),
        # 09:00 on the first Monday of the month
        (
            "cron(0 9 ? * 2#1 *)",
            ["2025-02-03T09:00:00+00:00", "2025-03-03T09:00:00+00:00", "2025-04-07T09:00:00+00:00"],
        ),
        # midnight on the last day of the month
        (
            "cron(0 0 L * ? *)",
            ["2025-01-31T00:00:00+00:00", "2025-02-28T00:00:00+00:00", "2025-03-31T00:00:00+00:00"],
        ),
        # midnight on the last Friday of the month
        (
            "cron(0 0 ? * 6L *)",
            ["2025-01-31T00:00:00+00:00", "2025-02-28T00:00:00+00:00", "2025-03-28T00:00:00+00:00"],
        ),
        # midnight on the last weekday of the month (2025-05-31 is a Saturday)
        (
            "cron(0 0 LW * ? *)",
            [
                "2025-01-31T00:00:00+00:00",
                "2025-02-28T00:00:00+00:00",
                "2025-03-31T00:00:00+00:00",
                "2025-04-30T00:00:00+00:00",
                "2025-05-30T00:00:00+00:00",
            ],
        ),
        # midnight on the weekday nearest the 15th (Feb and Mar 15 2025 are Saturdays)
        (
            "cron(0 0 15W * ? *)",
            ["2025-02-14T00:00:00+00:00", "2025-03-14T00:00:00+00:00", "2025-04-15T00:00:00+00:00"],
        ),
    ],
)
def test_aws_reference_examples_fire_when_documented(expression: str, expected: list[str]) -> None:
    assert fire_times(expression, len(expected)) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # "Every 6 hours"
        (
            "cron(0 */6 * * ? *)",
            ["2025-01-15T18:00:00+00:00", "2025-01-16T00:00:00+00:00", "2025-01-16T06:00:00+00:00"],
        ),
        # "Daily at 3 AM UTC"
        ("cron(0 3 * * ? *)", ["2025-01-16T03:00:00+00:00", "2025-01-17T03:00:00+00:00"]),
        # "Weekly on Sunday at 2 AM UTC"
        ("cron(0 2 ? * SUN *)", ["2025-01-19T02:00:00+00:00", "2025-01-26T02:00:00+00:00"]),
    ],
)
def test_the_seed_schedules_fire_as_their_comments_say(
    expression: str, expected: list[str]
) -> None:
    assert fire_times(expression, len(expected)) == expected


# --- AWS details ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # 2025-02-01 is a Saturday: 1W moves forward to Monday the 3rd, not into January.
        ("cron(0 0 1W * ? *)", datetime(2025, 1, 20, tzinfo=UTC), "2025-02-03T00:00:00+00:00"),
        # 2025-08-31 is a Sunday and the last day: 31W moves back to Friday the 29th.
        ("cron(0 0 31W * ? *)", datetime(2025, 8, 1, tzinfo=UTC), "2025-08-29T00:00:00+00:00"),
        # 31W never fires in a 30-day month: from September it waits for October 31 (a Friday).
        ("cron(0 0 31W * ? *)", datetime(2025, 9, 1, tzinfo=UTC), "2025-10-31T00:00:00+00:00"),
        # L alone in day-of-week is 7 = Saturday.
        ("cron(0 0 ? * L *)", AFTER, "2025-01-18T00:00:00+00:00"),
        # A fifth Thursday exists in January 2025 (the 30th), next in May (the 29th).
        ("cron(0 0 ? * THU#5 *)", AFTER, "2025-01-30T00:00:00+00:00"),
        ("cron(0 0 ? * 5#5 *)", datetime(2025, 2, 1, tzinfo=UTC), "2025-05-29T00:00:00+00:00"),
        # Names are case-insensitive and 1=SUN: 1 and sun are the same day.
        ("cron(0 0 ? * 1 *)", AFTER, "2025-01-19T00:00:00+00:00"),
        ("cron(0 0 ? * sun *)", AFTER, "2025-01-19T00:00:00+00:00"),
        # A wrapping day range: FRI-MON is Friday, Saturday, Sunday, Monday.
        ("cron(0 0 ? * FRI-MON *)", AFTER, "2025-01-17T00:00:00+00:00"),
        # Month names and a wrapping month range.
        ("cron(0 0 1 NOV-FEB ? *)", datetime(2025, 3, 1, tzinfo=UTC), "2025-11-01T00:00:00+00:00"),
        # A leap day waits for the leap year.
        ("cron(0 0 29 2 ? *)", AFTER, "2028-02-29T00:00:00+00:00"),
        # The year field: the first fire of 2027.
        ("cron(0 0 * * ? 2027-2030)", AFTER, "2027-01-01T00:00:00+00:00"),
        (
            "cron(0 0 * * ? 2027/2)",
            datetime(2027, 12, 31, 1, tzinfo=UTC),
            "2029-01-01T00:00:00+00:00",
        ),
        # The AWS example's form 1/10: minute 1, 11, 21 ...
        ("cron(1/10 * * * ? *)", AFTER, "2025-01-15T12:41:00+00:00"),
    ],
)
def test_aws_special_characters(expression: str, after: datetime, expected: str) -> None:
    assert fire_times(expression, 1, after) == [expected]


def test_a_schedule_whose_years_are_over_never_fires_again() -> None:
    schedule = parse_schedule("cron(0 0 1 1 ? 2020)")
    assert schedule.next_after(AFTER) is None
    assert schedule.next_fire_times(AFTER, 3) == []


def test_the_last_year_aws_allows_ends_the_schedule() -> None:
    times = parse_schedule("cron(0 0 31 12 ? *)").next_fire_times(
        datetime(2197, 6, 1, tzinfo=UTC), 5
    )
    assert [moment.year for moment in times] == [2197, 2198, 2199]


# --- Vixie 5-field -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # 0 and 7 are both Sunday.
        ("0 2 * * 0", AFTER, ["2025-01-19T02:00:00+00:00"]),
        ("0 2 * * 7", AFTER, ["2025-01-19T02:00:00+00:00"]),
        ("0 2 * * SUN", AFTER, ["2025-01-19T02:00:00+00:00"]),
        ("0 9 * * 1-5", AFTER, ["2025-01-16T09:00:00+00:00", "2025-01-17T09:00:00+00:00"]),
        # Both day fields restricted: a day matching either fires (the 13th OR a Friday).
        (
            "0 0 13 * 5",
            datetime(2025, 6, 1, tzinfo=UTC),
            ["2025-06-06T00:00:00+00:00", "2025-06-13T00:00:00+00:00", "2025-06-20T00:00:00+00:00"],
        ),
        # A day field starting with '*' counts as unrestricted (ISC cron): odd days AND Mondays.
        (
            "0 0 */2 * 1",
            AFTER,
            ["2025-01-27T00:00:00+00:00", "2025-02-03T00:00:00+00:00", "2025-02-17T00:00:00+00:00"],
        ),
        ("@daily", AFTER, ["2025-01-16T00:00:00+00:00"]),
        ("@hourly", AFTER, ["2025-01-15T13:00:00+00:00"]),
        ("@weekly", AFTER, ["2025-01-19T00:00:00+00:00"]),
        ("@monthly", AFTER, ["2025-02-01T00:00:00+00:00"]),
        ("@yearly", AFTER, ["2026-01-01T00:00:00+00:00"]),
        ("*/20 * * * *", AFTER, ["2025-01-15T12:40:00+00:00", "2025-01-15T13:00:00+00:00"]),
        ("5/20 * * * *", AFTER, ["2025-01-15T12:45:00+00:00", "2025-01-15T13:05:00+00:00"]),
    ],
)
def test_vixie_lines_fire_as_cron_does(
    expression: str, after: datetime, expected: list[str]
) -> None:
    assert fire_times(expression, len(expected), after) == expected


# --- daylight saving -----------------------------------------------------------------------


def test_aws_daily_0230_skips_the_missing_hour_in_berlin() -> None:
    # 2025-03-30: clocks jump from 02:00 to 03:00 in Europe/Berlin; 02:30 does not exist.
    assert fire_times(
        "cron(30 2 * * ? *)", 3, datetime(2025, 3, 28, 12, tzinfo=UTC), "Europe/Berlin"
    ) == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-31T02:30:00+02:00",
        "2025-04-01T02:30:00+02:00",
    ]


def test_vixie_daily_0230_runs_right_after_the_missing_hour_in_berlin() -> None:
    assert fire_times("30 2 * * *", 3, datetime(2025, 3, 28, 12, tzinfo=UTC), "Europe/Berlin") == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:30:00+02:00",
    ]


@pytest.mark.parametrize("expression", ["cron(30 2 * * ? *)", "30 2 * * *"])
def test_daily_0230_fires_once_in_the_repeated_hour_in_berlin(expression: str) -> None:
    # 2025-10-26: clocks go back from 03:00 to 02:00; 02:30 happens twice (CEST, then CET).
    times = parse_schedule(expression).next_fire_times(
        datetime(2025, 10, 25, 12, tzinfo=UTC), 3, "Europe/Berlin"
    )
    assert [moment.isoformat() for moment in times] == [
        "2025-10-26T02:30:00+02:00",
        "2025-10-27T02:30:00+01:00",
        "2025-10-28T02:30:00+01:00",
    ]
    # Asked from inside the repeated hour, after the first 02:30, the second is not a fire.
    second_pass = datetime(2025, 10, 26, 1, 0, tzinfo=UTC)  # 02:00 CET, the second 02:00
    assert parse_schedule(expression).next_after(second_pass, "Europe/Berlin") == times[1]


def test_aws_daily_0230_skips_the_missing_hour_in_new_york() -> None:
    # 2025-03-09: 02:00 EST jumps to 03:00 EDT.
    assert fire_times(
        "cron(30 2 * * ? *)", 3, datetime(2025, 3, 7, 12, tzinfo=UTC), "America/New_York"
    ) == [
        "2025-03-08T02:30:00-05:00",
        "2025-03-10T02:30:00-04:00",
        "2025-03-11T02:30:00-04:00",
    ]


def test_vixie_daily_0230_runs_at_0300_when_new_york_springs_forward() -> None:
    assert fire_times(
        "30 2 * * *", 2, datetime(2025, 3, 8, 12, tzinfo=UTC), "America/New_York"
    ) == ["2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"]


def test_daily_0230_in_new_york_fall_back_is_an_ordinary_day() -> None:
    # 2025-11-02: 02:00 EDT goes back to 01:00 EST; 02:30 exists once (EST).
    assert fire_times(
        "cron(30 2 * * ? *)", 2, datetime(2025, 11, 1, 12, tzinfo=UTC), "America/New_York"
    ) == ["2025-11-02T02:30:00-05:00", "2025-11-03T02:30:00-05:00"]


def test_daily_0130_fires_once_when_new_york_repeats_the_hour() -> None:
    assert fire_times(
        "cron(30 1 * * ? *)", 2, datetime(2025, 11, 1, 12, tzinfo=UTC), "America/New_York"
    ) == ["2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"]


def test_every_30_minutes_does_not_repeat_the_hour_new_york_repeats() -> None:
    times = fire_times(
        "cron(0/30 * * * ? *)", 6, datetime(2025, 11, 2, 4, 10, tzinfo=UTC), "America/New_York"
    )
    assert times == [
        "2025-11-02T00:30:00-04:00",
        "2025-11-02T01:00:00-04:00",
        "2025-11-02T01:30:00-04:00",
        "2025-11-02T02:00:00-05:00",
        "2025-11-02T02:30:00-05:00",
        "2025-11-02T03:00:00-05:00",
    ]


def test_vixie_wildcard_hours_skip_the_missing_hour_like_isc_cron() -> None:
    # '30 * * * *' is a wildcard job: ISC cron does not make up 02:30; neither do we.
    assert fire_times(
        "30 * * * *", 2, datetime(2025, 3, 9, 6, 40, tzinfo=UTC), "America/New_York"
    ) == ["2025-03-09T03:30:00-04:00", "2025-03-09T04:30:00-04:00"]


def test_a_gap_that_swallows_several_fire_times_fires_once() -> None:
    assert fire_times(
        "0,15,30,45 1-3 * * *", 4, datetime(2025, 3, 9, 6, 40, tzinfo=UTC), "America/New_York"
    ) == [
        "2025-03-09T01:45:00-05:00",
        "2025-03-09T03:00:00-04:00",
        "2025-03-09T03:15:00-04:00",
        "2025-03-09T03:30:00-04:00",
    ]


def test_a_half_hour_dst_shift_lord_howe() -> None:
    # Australia/Lord_Howe moves 02:00 to 02:30 on 2025-10-05.
    after = datetime(2025, 10, 4, 12, tzinfo=UTC)
    assert fire_times("cron(15 2 * * ? *)", 1, after, "Australia/Lord_Howe") == [
        "2025-10-06T02:15:00+11:00"
    ]
    assert fire_times("15 2 * * *", 1, after, "Australia/Lord_Howe") == [
        "2025-10-05T02:30:00+11:00"
    ]


def test_fire_times_come_back_in_the_rule_timezone() -> None:
    moment = parse_schedule("cron(0 3 * * ? *)").next_after(AFTER, "Asia/Kolkata")
    assert moment is not None
    assert moment.tzinfo == ZoneInfo("Asia/Kolkata")
    assert moment.isoformat() == "2025-01-16T03:00:00+05:30"


def test_an_after_in_another_timezone_is_the_same_instant() -> None:
    schedule = parse_schedule("cron(0 3 * * ? *)")
    in_tokyo = AFTER.astimezone(ZoneInfo("Asia/Tokyo"))
    assert schedule.next_after(in_tokyo, "Europe/Berlin") == schedule.next_after(
        AFTER, "Europe/Berlin"
    )


# --- rate() --------------------------------------------------------------------------------


def test_rate_is_anchored_at_the_unix_epoch_by_default() -> None:
    assert fire_times("rate(6 hours)", 3) == [
        "2025-01-15T18:00:00+00:00",
        "2025-01-16T00:00:00+00:00",
        "2025-01-16T06:00:00+00:00",
    ]
    assert fire_times("rate(1 minute)", 2) == [
        "2025-01-15T12:35:00+00:00",
        "2025-01-15T12:36:00+00:00",
    ]


def test_rate_counts_from_a_given_anchor_both_ways() -> None:
    schedule = parse_schedule("rate(5 minutes)")
    anchor = datetime(2025, 1, 15, 12, 0, 30, tzinfo=UTC)
    assert schedule.next_after(anchor, anchor=anchor) == anchor + timedelta(minutes=5)
    assert schedule.next_after(AFTER, anchor=anchor) == datetime(
        2025, 1, 15, 12, 35, 30, tzinfo=UTC
    )
    # The anchor fixes the phase only: before it the same lattice continues.
    before = datetime(2025, 1, 15, 11, 52, tzinfo=UTC)
    assert schedule.next_after(before, anchor=anchor) == datetime(
        2025, 1, 15, 11, 55, 30, tzinfo=UTC
    )


def test_rate_days_are_24_hours_across_dst() -> None:
    assert fire_times("rate(1 day)", 3, datetime(2025, 3, 29, 12, tzinfo=UTC), "Europe/Berlin") == [
        "2025-03-30T01:00:00+01:00",
        "2025-03-31T02:00:00+02:00",
        "2025-04-01T02:00:00+02:00",
    ]


def test_rate_refuses_a_naive_anchor() -> None:
    with pytest.raises(ConfigError, match="anchor"):
        parse_schedule("rate(1 hour)").next_after(AFTER, anchor=datetime(2025, 1, 1))  # noqa: DTZ001


# --- the object ----------------------------------------------------------------------------


def test_kinds_describe_and_str() -> None:
    aws = parse_schedule(" cron(0 2 ? * SUN *) ")
    assert isinstance(aws, CronSchedule)
    assert aws.kind == "cron"
    assert aws.describe() == "at 02:00, on SUN"
    assert str(aws) == " cron(0 2 ? * SUN *) "
    vixie = parse_schedule("30 2 * * *")
    assert vixie.kind == "vixie"
    assert vixie.describe() == "at 02:30, every day"
    rate = parse_schedule("rate(6 hours)")
    assert isinstance(rate, RateSchedule)
    assert rate.kind == "rate"
    assert rate.interval == timedelta(hours=6)
    assert rate.describe() == "every 6 hours"
    assert parse_schedule("rate(1 day)").describe() == "every day"
    assert (
        parse_schedule("cron(0 0 ? * 6L *)").describe() == "at 00:00, on the last FRI of the month"
    )
    assert (
        parse_schedule("cron(0 9 ? * 2#1 *)").describe()
        == "at 09:00, on the first MON of the month"
    )


def test_matches_checks_a_wall_time() -> None:
    schedule = parse_schedule("cron(0 0 LW * ? *)")
    assert isinstance(schedule, CronSchedule)
    assert schedule.matches(datetime(2025, 5, 30, tzinfo=UTC))
    assert not schedule.matches(datetime(2025, 5, 31, tzinfo=UTC))


def test_count_zero_and_equal_expressions() -> None:
    assert parse_schedule("cron(0 3 * * ? *)").next_fire_times(AFTER, 0) == []
    assert parse_schedule("cron(0 3 * * ? *)") == parse_schedule("cron(0 3 * * ? *)")


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        (
            "cron(0 0 1 * MON *)",
            ["day-of-month value '1'", "day-of-week value 'MON'", "both given"],
        ),
        ("cron(0 0 * * * *)", ["day-of-month value '*'", "day-of-week value '*'"]),
        ("cron(0 0 ? * ? *)", ["day-of-month value '?'", "both ?"]),
        ("cron(? 0 * * ? *)", ["minutes value '?'"]),
        ("cron(0 ? * * ? *)", ["hours value '?'"]),
        ("cron(0 0 * ? ? *)", ["month value '?'"]),
        ("cron(0 0 ? * 8 *)", ["day-of-week value '8'", "1-7"]),
        ("cron(0 0 ? * 0 *)", ["day-of-week value '0'"]),
        ("cron(0 0 ? * MON-FOO *)", ["day-of-week value 'MON-FOO'"]),
        ("cron(0 0 ? * */2 *)", ["day-of-week value '*/2'", "'/'"]),
        ("cron(0 0 ? * 3#6 *)", ["day-of-week value '3#6'"]),
        ("cron(0 0 ? * 3#1,6#3 *)", ["day-of-week value '3#1,6#3'"]),
        ("cron(0 0 ? * MON,6L *)", ["day-of-week value 'MON,6L'"]),
        ("cron(0 0 # * ? *)", ["day-of-month value '#'"]),
        ("cron(0 0 L-2 * ? *)", ["day-of-month value 'L-2'"]),
        ("cron(0 0 1,15W * ? *)", ["day-of-month value '1,15W'"]),
        ("cron(0 0 32W * ? *)", ["day-of-month value '32W'"]),
        ("cron(0 0 30 FEB ? *)", ["day-of-month value '30'", "never"]),
        ("cron(0 0 31 4,6 ? *)", ["day-of-month value '31'", "never"]),
        ("cron(60 0 * * ? *)", ["minutes value '60'", "0-59"]),
        ("cron(0 24 * * ? *)", ["hours value '24'"]),
        ("cron(0 0 0 * ? *)", ["day-of-month value '0'"]),
        ("cron(0 0 * 13 ? *)", ["month value '13'"]),
        ("cron(0 0 * JANUARY ? *)", ["month value 'JANUARY'"]),
        ("cron(0 0 * * ? 2200)", ["year value '2200'", "1970-2199"]),
        ("cron(0 0 * * ? 1969)", ["year value '1969'"]),
        ("cron(0 0 * * ? 2030-2025)", ["year value '2030-2025'", "backwards"]),
        ("cron(0/0 * * * ? *)", ["minutes value '0/0'", "step"]),
        ("cron(*/x * * * ? *)", ["minutes value '*/x'", "step"]),
        ("cron(1,,2 * * * ? *)", ["minutes value ''", "empty"]),
        ("cron(a 0 * * ? *)", ["minutes value 'a'"]),
        ("cron(0 0 * * ?)", ["cron() value '0 0 * * ?'", "5 fields"]),
        ("cron(0 0 * * ? * *)", ["7 fields"]),
        ("0 0 ? * *", ["day-of-month value '?'", "AWS"]),
        ("0 0 L * *", ["day-of-month value 'L'"]),
        ("0 0 * * 1#2", ["day-of-week value '1#2'"]),
        ("0 0 * * 8", ["day-of-week value '8'", "0-7"]),
        ("0 0 5-2 * *", ["day-of-month value '5-2'", "backwards"]),
        ("0 0 31 2 *", ["day-of-month value '31'", "never"]),
        ("0 0 * * * *", ["expression value '0 0 * * * *'", "cron(...)"]),
        ("rate(1 hours)", ["rate unit value 'hours'", "rate(1 hour)"]),
        ("rate(5 minute)", ["rate unit value 'minute'", "rate(5 minutes)"]),
        ("rate(0 minutes)", ["rate value '0'"]),
        ("rate(-5 minutes)", ["rate value '-5'"]),
        ("rate(1.5 hours)", ["rate value '1.5'"]),
        ("rate(2 weeks)", ["rate unit value 'weeks'"]),
        ("rate(5)", ["rate() value '5'"]),
        ("rate(9999999999 days)", ["rate value '9999999999'", "too large"]),
        ("every day", ["expression value 'every day'"]),
        ("CRON(0 0 * * ? *)", ["expression value 'CRON(0 0 * * ? *)'", "lower case"]),
        ("cron(0 0 * * ? *", ["expression value 'cron(0 0 * * ? *'"]),
        ("@reboot", ["expression value '@reboot'"]),
        ("", ["expression value ''"]),
    ],
)
def test_invalid_expressions_name_the_field_and_the_value(
    expression: str, names: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_schedule(expression)
    message, hint = caught.value.message, caught.value.hint
    for name in names:
        # "<field> value '<value>'" must be in the message; explanations may be in the hint.
        assert name in (message if " value '" in name else f"{message} {hint}")
    assert repr(expression) in caught.value.message
    assert caught.value.hint
    assert not caught.value.retryable


@pytest.mark.parametrize("name", ["Mars/Olympus", "America", "", "../etc/passwd", "utc"])
def test_an_unknown_timezone_is_named(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_schedule("cron(0 3 * * ? *)").next_fire_times(AFTER, 1, name)
    assert f"ScheduleExpressionTimezone value {name!r}" in caught.value.message
    assert "IANA" in caught.value.hint


def test_resolve_timezone_passes_zoneinfo_through() -> None:
    zone = ZoneInfo("Europe/Berlin")
    assert resolve_timezone(zone) is zone
    assert resolve_timezone("UTC") == ZoneInfo("UTC")


@pytest.mark.parametrize("expression", ["cron(0 3 * * ? *)", "30 2 * * *", "rate(1 hour)"])
def test_a_naive_after_is_refused(expression: str) -> None:
    with pytest.raises(ConfigError, match="no timezone"):
        parse_schedule(expression).next_after(datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ConfigError, match="no timezone"):
        parse_schedule(expression).next_fire_times(datetime(2025, 1, 1), 2)  # noqa: DTZ001


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ConfigError, match="count"):
        parse_schedule("rate(1 hour)").next_fire_times(AFTER, -1)

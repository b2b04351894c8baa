"""``--since`` and ``--max-age``: durations and ISO 8601 times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import ConfigError
from strongroom.services.retention.periods import parse_duration, parse_since

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(hours=36)),
        (" 1.5H ", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "1y", "-1h", "0h", "1 d", "yesterday"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(sorted(UNITS)))
def test_every_number_and_unit_is_that_many_seconds(number: int, unit: str) -> None:
    assert parse_duration(f"{number}{unit}") == timedelta(seconds=number * UNITS[unit])
    assert parse_since(f"{number}{unit}", NOW) == NOW - timedelta(seconds=number * UNITS[unit])


def test_since_takes_iso_times_in_any_zone_and_naive_ones_as_utc() -> None:
    assert parse_since("2030-06-01T09:30:00+02:00", NOW) == datetime(2030, 6, 1, 7, 30, tzinfo=UTC)
    assert parse_since("2030-06-01T07:30:00Z", NOW) == datetime(2030, 6, 1, 7, 30, tzinfo=UTC)
    assert parse_since("2030-05-31", NOW) == datetime(2030, 5, 31, tzinfo=UTC)
    assert parse_since("24h", NOW) == NOW - timedelta(days=1)


@pytest.mark.parametrize("text", ["2030-06-02", "not a time", "2030-13-01"])
def test_since_refuses_the_future_and_nonsense(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_since(text, NOW)

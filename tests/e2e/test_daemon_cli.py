"""`strongroom schedule preview` and `strongroom serve --once`, run as a user runs them.

The plan is written into the home's catalog directly (as `strongroom apply` stores it), so
these tests depend only on the catalog's format.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.catalog import open_catalog
from strongroom.catalog.leases import get_lease
from tests.support.cli import strongroom, text
from tests.support.scheduling import (
    CONTINUOUS,
    DAILY,
    WEEKLY,
    seed_plan,
    seed_resources,
)

pytestmark = pytest.mark.e2e

BERLIN_NIGHTLY = {
    "name": "berlin-nightly",
    "schedule": "cron(30 2 * * ? *)",
    "timezone": "Europe/Berlin",
    "start_window_minutes": 60,
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with open_catalog(None, home) as catalog:
        seed_resources(catalog)
        seed_plan(catalog, [CONTINUOUS, DAILY, WEEKLY, BERLIN_NIGHTLY])
    return home


def test_preview_prints_the_next_fire_times_of_every_rule_as_a_table(home: Path) -> None:
    result = strongroom(
        home, "schedule", "preview", "production", "--count", "3", "--from", "2030-03-30T12:00Z"
    )

    assert result.returncode == 0, text(result)
    out = result.stdout.decode()
    assert "next fire times of plan production" in out
    for line in (
        "2030-03-30T18:00:00+00:00",
        "2030-03-31T00:00:00+00:00",
        "2030-03-31T02:00:00+00:00",  # weekly: Sunday 02:00 UTC
        "2030-04-01T03:00:00+00:00",
        # 31 March 2030 is the spring-forward day in Berlin: 02:30 does not exist there.
        "2030-04-01T02:30:00+02:00",
    ):
        assert line in out, out


def test_preview_as_json_gives_iso_times_with_offsets_in_the_rules_timezone(home: Path) -> None:
    result = strongroom(
        home,
        "schedule",
        "preview",
        "production",
        "--rule",
        "berlin-nightly",
        "-n",
        "2",
        "--from",
        "2030-01-01T00:00:00+00:00",
        "--output",
        "json",
    )

    assert result.returncode == 0, text(result)
    (rule,) = json.loads(result.stdout)
    assert rule == {
        "plan": "production",
        "rule": "berlin-nightly",
        "schedule": "cron(30 2 * * ? *)",
        "timezone": "Europe/Berlin",
        "description": rule["description"],
        "fire_times": ["2030-01-01T02:30:00+01:00", "2030-01-02T02:30:00+01:00"],
        "last_fired_at": None,
    }
    assert "02:30" in rule["description"]


def test_preview_of_an_unknown_plan_or_rule_fails_with_a_hint(home: Path) -> None:
    missing_plan = strongroom(home, "schedule", "preview", "nope")
    missing_rule = strongroom(home, "schedule", "preview", "production", "--rule", "nope")
    bad_time = strongroom(home, "schedule", "preview", "production", "--from", "tomorrow")

    assert missing_plan.returncode == 3
    assert "no plan named 'nope'" in text(missing_plan)
    assert "strongroom apply" in text(missing_plan)
    assert missing_rule.returncode == 3
    assert "has no rule named 'nope'" in text(missing_rule)
    assert bad_time.returncode == 2
    assert "not an ISO 8601 time" in text(bad_time)


def test_serve_once_on_a_catalog_with_nothing_due_exits_zero(home: Path) -> None:
    result = strongroom(home, "serve", "--once", "--tick", "0.1")

    assert result.returncode == 0, text(result)
    assert "stopped" in result.stderr.decode()
    with open_catalog(None, home) as catalog, catalog.session(readonly=True) as session:
        lease = get_lease(session, "scheduler")
        assert lease is not None and lease.expires_at <= datetime.now(UTC)

"""When a scheduled report rule is due: at once the first time, then once per firing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strongroom.config.reports import ReportRule
from strongroom.services.reports.scheduled import due_firing

NOW = datetime(2030, 3, 15, 10, 30, tzinfo=UTC)


def rule(schedule: str) -> ReportRule:
    return ReportRule(name="r", frameworks=["soc2"], schedule=schedule, channels=["mail"])


def test_a_rule_never_run_is_due_now() -> None:
    assert due_firing(rule("cron(0 6 1 * ? *)"), None, NOW) == NOW


def test_a_rule_is_due_at_its_newest_firing_since_the_last_report() -> None:
    daily = rule("cron(0 6 * * ? *)")
    assert due_firing(daily, NOW - timedelta(hours=1), NOW) is None  # next is tomorrow 06:00
    yesterday = datetime(2030, 3, 14, 6, tzinfo=UTC)
    assert due_firing(daily, yesterday, NOW) == datetime(2030, 3, 15, 6, tzinfo=UTC)
    week_ago = yesterday - timedelta(days=7)  # downtime: one report, of the newest firing
    assert due_firing(daily, week_ago, NOW) == datetime(2030, 3, 15, 6, tzinfo=UTC)


def test_a_monthly_rule_in_a_timezone() -> None:
    monthly = ReportRule(
        name="m",
        frameworks=["all"],
        schedule="cron(0 6 1 * ? *)",
        timezone="Europe/Berlin",
        channels=["mail"],
    )
    last = datetime(2030, 2, 1, 5, tzinfo=UTC)  # 06:00 in Berlin (winter time)
    assert due_firing(monthly, last, NOW) == datetime(2030, 3, 1, 5, tzinfo=UTC)

"""The lifecycle runner and garbage collection watched: the monitor raises
``monitor.lifecycle_run_overdue`` while the runner has not passed over every vault within
its threshold, and ``monitor.gc_overdue`` while a vault that lost points has not been
collected since; each resolves once the run is recorded, and the metrics show the times.
Time is a manual clock on the same catalog."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strongroom.catalog import outbox as catalog_outbox
from strongroom.daemon.metrics import open_registry
from strongroom.engine.clock import ManualClock
from strongroom.metrics.server import exposition
from strongroom.services.context import AppContext
from strongroom.services.reports.monitor import GC, LIFECYCLE_RUN, MonitorService
from strongroom.services.retention.deletion import delete_recovery_point
from strongroom.services.retention.lifecycle import LifecycleService
from strongroom.services.vaults.service import VaultService
from tests.support.data import make_tree
from tests.unit.services.operations_support import FAST_RETRY, Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    world.files("docs", make_tree(tmp_path / "data"))
    with world.context.catalog.session() as session:
        catalog_outbox.write_section(
            session,
            catalog_outbox.MONITOR,
            {
                "lifecycle_run_max_age_hours": 6,
                "gc_max_age_days": 2,
                "backup_age_hours": 24 * 30,
                "verification_max_age_days": 30,
            },
            at=world.context.now(),
        )
    yield world
    world.close()


def _at(ops: Ops, when: datetime) -> AppContext:
    return AppContext(home=ops.context.home, clock=ManualClock(when))


def _checks(context: AppContext) -> dict[str, list[str]]:
    report = MonitorService(context).check()
    return {
        "alerts": sorted(f"{alert.check}/{alert.subject}" for alert in report.alerts),
        "raised": report.raised,
        "resolved": report.resolved,
    }


def _gauges(context: AppContext) -> dict[tuple[str, str], float]:
    text, _ = exposition(open_registry(context))
    return {
        (sample.name, sample.labels.get("vault", "")): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.name.endswith("_last_run_timestamp_seconds")
    }


def test_a_lifecycle_runner_that_never_ran_or_stopped_alerts_until_it_runs(ops: Ops) -> None:
    rule = ops.rule(
        "ops",
        "daily",
        selects=("docs",),
        lifecycle={"delete_after_days": 30},
        retry_policy={"max_attempts": 1, **FAST_RETRY},
    )
    ops.backup("docs", rule=rule)
    start = ops.context.now()
    contexts = [_at(ops, start + timedelta(hours=hours)) for hours in (5, 7, 20)]
    try:
        assert _checks(contexts[0])["alerts"] == []  # the point is younger than 6 h
        seven = _checks(contexts[1])
        assert seven["alerts"] == [f"{LIFECYCLE_RUN}/lifecycle"]
        assert seven["raised"] == [f"monitor/{LIFECYCLE_RUN}/lifecycle"]
        assert _gauges(contexts[1]) == {}  # never ran: no sample

        LifecycleService(contexts[1]).run()
        assert _checks(contexts[1])["resolved"] == [f"monitor/{LIFECYCLE_RUN}/lifecycle"]
        ran_at = (start + timedelta(hours=7)).timestamp()
        assert _gauges(contexts[1]) == {
            ("strongroom_lifecycle_last_run_timestamp_seconds", ""): ran_at
        }
        LifecycleService(contexts[1]).run(vault="main")  # one vault's run is not a pass
        assert _checks(contexts[2])["raised"] == [f"monitor/{LIFECYCLE_RUN}/lifecycle"]
    finally:
        for context in contexts:
            context.close()


def test_a_vault_that_lost_points_alerts_until_its_gc_runs(ops: Ops) -> None:
    first = ops.backup("docs").result["point_id"]  # type: ignore[index]
    ops.backup("docs")
    delete_recovery_point(ops.context, first, actor="test")
    deleted = ops.context.now()
    one_day = _at(ops, deleted + timedelta(days=1))
    three_days = _at(ops, deleted + timedelta(days=3))
    try:
        assert _checks(one_day)["alerts"] == []
        late = _checks(three_days)
        assert late["alerts"] == [f"{GC}/main"]
        [alert] = MonitorService(three_days).check().alerts
        assert alert.vault == "main" and "strongroom vault gc main" in alert.message

        VaultService(three_days).gc("main", dry_run=True)  # a dry run collects nothing
        assert _checks(three_days)["alerts"] == [f"{GC}/main"]
        VaultService(three_days).gc("main")
        assert _checks(three_days)["resolved"] == [f"monitor/{GC}/main"]
        assert _gauges(three_days) == {
            ("strongroom_gc_last_run_timestamp_seconds", "main"): (
                deleted + timedelta(days=3)
            ).timestamp()
        }
    finally:
        one_day.close()
        three_days.close()

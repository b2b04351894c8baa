"""The console's overview over jobs that really ran: rates, ages against the RPO, storage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.catalog import outbox
from strongroom.services.reports.overview import OverviewService
from tests.support.data import make_tree
from tests.unit.services.operations_support import FAST_RETRY, Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    yield world
    world.close()


def test_the_overview_counts_backups_ages_failures_and_storage(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    ops.sqlite("app-db", tmp_path / "missing.db")
    ops.files("never", tmp_path / "data")
    with ops.context.catalog.session() as session:
        outbox.write_section(
            session,
            outbox.MONITOR,
            {"backup_age_hours": 12, "resources": {"docs": {"backup_age_hours": 2}}},
            at=ops.context.now(),
        )
    first = ops.backup("docs")
    second = ops.backup("docs")
    ops.backup("app-db", retry=FAST_RETRY)
    assert first.result is not None and second.result is not None

    overview = OverviewService(ops.context).overview()

    assert (overview.backups_ended, overview.backups_completed) == (3, 2)
    assert overview.success_rate == pytest.approx(2 / 3)
    assert overview.by_state == {"COMPLETED": 2, "FAILED": 1}
    ages = {age.resource: age for age in overview.resources}
    assert sorted(ages) == ["app-db", "docs", "never"]
    docs = ages["docs"]
    assert docs.newest_at == ops.point(second.result["point_id"]).created_at
    assert docs.rpo_seconds == 2 * 3600
    assert docs.within_rpo is True
    assert ages["never"].newest_at is None
    assert ages["never"].within_rpo is False
    assert ages["never"].rpo_seconds == 12 * 3600
    assert overview.outside_rpo == 2
    assert [(failure.kind, failure.resource, failure.count) for failure in overview.failures] == [
        ("backup", "app-db", 1)
    ]
    stored = {(item.vault, item.tier): item.stored_bytes for item in overview.storage}
    assert stored[("main", "warm")] == sum(
        ops.point(job.result["point_id"]).stored_size for job in (first, second) if job.result
    )
    assert stored[("main", "cold")] == 0
    assert (overview.running, overview.waiting) == (0, 0)
    assert overview.lag == []
    assert overview.as_json()["backups"]["success_rate"] == pytest.approx(2 / 3)


def test_the_window_bounds_the_rate_and_ages_grow_with_the_clock(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    ops.backup("docs")
    service = OverviewService(ops.context)

    later = service.overview(window=timedelta(0))
    assert later.backups_ended == 0
    assert later.success_rate is None
    (docs,) = later.resources
    assert docs.age_seconds is not None and docs.age_seconds >= 0
    assert docs.rpo_seconds == 24 * 3600  # the monitor's default

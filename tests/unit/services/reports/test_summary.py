"""``report summary`` and ``report detailed`` over jobs that really ran."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.catalog.types import JobKind, JobState
from strongroom.services.reports.summary import ReportService
from tests.support.data import make_tree
from tests.unit.services.operations_support import FAST_RETRY, Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    yield world
    world.close()


def test_the_summary_counts_rates_durations_sizes_ages_and_failures(
    ops: Ops, tmp_path: Path
) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    ops.sqlite("app-db", tmp_path / "missing.db")
    ops.files("never", tmp_path / "data")
    first = ops.backup("docs")
    second = ops.backup("docs")
    failed = ops.backup("app-db", retry=FAST_RETRY)
    assert first.result is not None and second.result is not None
    verify = ops.run(ops.service.start_verify(first.result["point_id"]))

    summary = ReportService(ops.context).summary().as_json()

    assert summary["jobs"]["total"] == 4
    assert summary["jobs"]["by_state"] == {"COMPLETED": 3, "FAILED": 1}
    assert summary["jobs"]["by_kind"] == {
        "backup": {"COMPLETED": 2, "FAILED": 1},
        "verify": {"COMPLETED": 1},
    }
    backups = summary["backups"]
    assert (backups["total"], backups["completed"], backups["failed"]) == (3, 2, 1)
    assert backups["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert 0 <= backups["duration_seconds"]["average"] <= backups["duration_seconds"]["max"]
    assert backups["logical_size"] == first.result["logical_size"] + second.result["logical_size"]
    assert backups["new_stored_size"] == (
        first.result["new_stored_size"] + second.result["new_stored_size"]
    )
    assert second.result["new_stored_size"] < first.result["new_stored_size"]  # deduplicated
    resources = {item["resource"]: item for item in summary["resources"]}
    assert resources["docs"]["last_point_id"] == second.result["point_id"]
    assert resources["docs"]["stale"] is False
    assert resources["docs"]["backups_in_period"] == 2
    assert resources["app-db"]["last_point_id"] is None
    assert resources["app-db"]["stale"] is True
    assert resources["app-db"]["failed_in_period"] == 1
    assert resources["never"]["backups_in_period"] == 0
    assert [item["job_id"] for item in summary["failures"]] == [failed.id]
    assert summary["failures"][0]["error_code"] == "ResourceNotFoundException"
    assert verify.state is JobState.COMPLETED


def test_the_period_bounds_the_jobs_and_ages_count_to_its_end(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    job = ops.backup("docs")
    report = ReportService(ops.context)

    later = report.summary(since=job.finished_at, until=job.created_at + timedelta(days=3))
    assert later.as_json()["jobs"]["total"] == 0
    assert later.success_rate is None
    (docs,) = later.resources
    assert docs.stale is True
    assert docs.age_seconds is not None and docs.age_seconds > 2 * 86_400

    lenient = report.summary(until=job.created_at + timedelta(days=3), max_age=timedelta(days=7))
    assert lenient.resources[0].stale is False


def test_the_detailed_report_has_one_row_per_job_newest_first(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    ops.dead_postgres("orders-db")
    good = ops.backup("docs")
    bad = ops.backup("orders-db", retry={"max_attempts": 2, **FAST_RETRY})
    assert good.result is not None

    rows = ReportService(ops.context).detailed()

    assert [row["job_id"] for row in rows] == [bad.id, good.id]
    assert rows[1]["point_id"] == good.result["point_id"]
    assert rows[1]["logical_size"] == good.result["logical_size"]
    assert rows[1]["duration_seconds"] is not None
    assert (rows[0]["state"], rows[0]["attempt"], rows[0]["error_code"]) == (
        "FAILED",
        2,
        "NetworkError",
    )
    assert ReportService(ops.context).detailed(kinds=[JobKind.VERIFY]) == []

"""Copy jobs through the services: queued with a backup's end by its rule's copy actions
(never for a backup that failed), run with retries, recorded with their source link, and
the replication lag of each copy pair."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.catalog.audit import EntryFilter
from strongroom.catalog.types import JobKind, JobState, PointState
from strongroom.errors import ConfigError, NotFoundError
from strongroom.services.audit.service import AuditService
from strongroom.services.jobs.copies import CopyService
from strongroom.services.reports.lag import ReplicationService
from strongroom.services.retention.deletion import delete_recovery_point
from tests.support.data import make_tree
from tests.unit.services.operations_support import FAST_RETRY, Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    world.add_vault("dr")
    yield world
    world.close()


def _copy_jobs(ops: Ops) -> list[str]:
    return [job.id for job in ops.service.jobs.list(kinds=[JobKind.COPY])]


def _rule_with_copy(ops: Ops, data: Path) -> str:
    ops.files("docs", data)
    return ops.rule(
        "ops",
        "daily",
        selects=("docs",),
        lifecycle={"delete_after_days": 7},
        retry_policy={"max_attempts": 2, **FAST_RETRY},
        copy_actions=[{"destination_vault": "dr", "lifecycle": {"delete_after_days": 60}}],
    )


def test_a_backup_queues_its_rules_copy_and_the_copy_keeps_its_link(
    ops: Ops, tmp_path: Path
) -> None:
    rule = _rule_with_copy(ops, make_tree(tmp_path / "data"))
    backup = ops.backup("docs", rule=rule)
    assert backup.state is JobState.COMPLETED
    [copy_id] = _copy_jobs(ops)
    queued = ops.service.jobs.get(copy_id)
    assert AuditService(ops.context).list(EntryFilter(action="copy.start")) == []  # by a rule
    assert (queued.state, queued.vault, queued.rule, queued.max_attempts) == (
        JobState.PENDING,
        "dr",
        rule,
        2,
    )
    assert queued.params["point_id"] == backup.result["point_id"]  # type: ignore[index]

    done = ops.service.run(copy_id, poll_interval=0.05)
    by_hand = CopyService(ops.context).start_copy(backup.result["point_id"], "dr")  # type: ignore[index]
    [started] = AuditService(ops.context).list(EntryFilter(action="copy.start"))
    assert (started["subject"], started["outcome"]) == (by_hand.id, "succeeded")
    assert done.state is JobState.COMPLETED, done.error
    copy = ops.point(done.result["point_id"])  # type: ignore[index]
    source = ops.point(backup.result["point_id"])  # type: ignore[index]
    assert copy.vault == "dr" and copy.source_point_id == source.id
    assert copy.delete_at is not None and source.delete_at is not None
    assert copy.delete_at - copy.created_at > source.delete_at - source.created_at
    assert ops.vault_point_ids("dr") == [copy.id]
    assert ops.scratch_left() == []


def test_a_failed_backup_queues_no_copy(ops: Ops, tmp_path: Path) -> None:
    rule = _rule_with_copy(ops, tmp_path / "no such folder")
    assert ops.backup("docs", rule=rule).state is JobState.FAILED
    assert _copy_jobs(ops) == []


def test_a_copy_of_a_point_whose_data_is_gone_fails_and_commits_nothing(
    ops: Ops, tmp_path: Path
) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    point_id = ops.backup("docs").result["point_id"]  # type: ignore[index]
    for pack in (tmp_path / "stores" / "main" / "data").rglob("*"):
        if pack.is_file():
            pack.unlink()
    job = CopyService(ops.context).start_copy(point_id, "dr", retry={"max_attempts": 1})
    failed = ops.run(job)
    assert failed.state is JobState.FAILED
    assert failed.error is not None and failed.error.code == "IntegrityError"
    assert "pack" in failed.error.message and point_id in failed.error.message
    assert ops.vault_point_ids("dr") == []


def test_start_copy_refuses_what_cannot_be_copied(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    point_id = ops.backup("docs").result["point_id"]  # type: ignore[index]
    service = CopyService(ops.context)
    with pytest.raises(ConfigError, match="already"):
        service.start_copy(point_id, "main")
    [refused] = AuditService(ops.context).list(EntryFilter(action="copy.start"))
    assert (refused["subject"], refused["outcome"]) == (point_id, "refused")
    with pytest.raises(NotFoundError):
        service.start_copy(point_id, "elsewhere")
    with pytest.raises(NotFoundError):
        service.start_copy("f" * 64, "dr")
    delete_recovery_point(ops.context, point_id, actor="test")
    with pytest.raises(ConfigError, match="deleted"):
        service.start_copy(point_id, "dr")
    assert _copy_jobs(ops) == []


def test_replication_lag_counts_the_points_behind(ops: Ops, tmp_path: Path) -> None:
    rule = _rule_with_copy(ops, make_tree(tmp_path / "data"))
    first = ops.backup("docs", rule=rule)
    [lag] = ReplicationService(ops.context).lag()
    assert (lag.source_vault, lag.resource, lag.destination_vault) == ("main", "docs", "dr")
    assert (lag.behind, lag.newest_copied_point, lag.lag_seconds) == (1, None, None)

    [copy_job] = _copy_jobs(ops)
    ops.service.run(copy_job, poll_interval=0.05)
    ops.backup("docs", rule=rule)
    third = ops.backup("docs", rule=rule)
    [lag] = ReplicationService(ops.context).lag()
    assert lag.newest_source_point == third.result["point_id"]  # type: ignore[index]
    assert lag.newest_copied_point == first.result["point_id"]  # type: ignore[index]
    assert lag.behind == 2
    assert lag.newest_source_at is not None and lag.newest_copied_at is not None
    assert lag.lag_seconds == (lag.newest_source_at - lag.newest_copied_at).total_seconds()
    assert lag.as_json()["behind"] == 2

    for job_id in _copy_jobs(ops):
        ops.service.run(job_id, poll_interval=0.05)
    [lag] = ReplicationService(ops.context).lag()
    assert (lag.behind, lag.lag_seconds) == (0, 0)
    assert lag.newest_copied_point == third.result["point_id"]  # type: ignore[index]
    assert ops.point(str(lag.newest_copy_point)).state is PointState.AVAILABLE


def test_a_copy_lifecycle_that_deletes_before_it_moves_to_cold_is_refused(
    ops: Ops, tmp_path: Path
) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    point_id = ops.backup("docs").result["point_id"]  # type: ignore[index]
    with pytest.raises(ConfigError, match="delete_after_days"):
        CopyService(ops.context).start_copy(
            point_id, "dr", lifecycle={"move_to_cold_after_days": 30, "delete_after_days": 10}
        )
    assert _copy_jobs(ops) == []

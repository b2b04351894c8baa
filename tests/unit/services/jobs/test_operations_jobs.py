"""Backup, restore and verify jobs end to end through the services: real vault, real sources.

Each test declares resources in a SQLite catalog, starts jobs with ``OperationsService``
and runs them in-process; assertions look at the data (restored bytes, database rows),
the vault (which points exist) and the catalog (points, evidence, transitions).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from strongroom.catalog.types import JobState, PointState
from strongroom.config.resources import FilesResource, KubernetesResource
from strongroom.errors import (
    ConfigError,
    ConflictError,
    IllegalTransitionError,
    IntegrityError,
    NotFoundError,
    UnsupportedError,
)
from strongroom.services.jobs.handlers import handlers
from strongroom.services.jobs.operations import EXIT_ABORTED, outcome
from strongroom.sources import REGISTRY, SourceEntry
from strongroom.sources.base import (
    BackupResult,
    Description,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    StreamSink,
)
from strongroom.sources.sqlite import SqliteSource
from tests.support.data import (
    flip_byte_in_a_pack,
    make_database,
    make_tree,
    table_rows,
    tree_digest,
)
from tests.support.waiting import PATIENCE
from tests.unit.services.operations_support import FAST_RETRY, Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    yield world
    world.close()


def states(ops: Ops, job_id: str) -> list[str]:
    return [t.to_state.value for t in ops.service.describe_job(job_id).transitions]


# --- backup ------------------------------------------------------------------------------


def test_a_backup_commits_one_point_and_records_it(ops: Ops, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "data")
    ops.files("docs", source)

    job = ops.backup("docs")

    assert job.state is JobState.COMPLETED, job.error
    assert states(ops, job.id) == ["CREATED", "PENDING", "RUNNING", "COMPLETED"]
    assert job.result is not None
    point_id = job.result["point_id"]
    assert ops.vault_point_ids() == [point_id]
    point = ops.point(point_id)
    assert (point.resource, point.vault, point.job_id) == ("docs", "main", job.id)
    assert point.state is PointState.AVAILABLE
    assert point.logical_size == job.result["logical_size"] > 300_000
    assert point.stored_size > 0
    assert point.tags["strongroom:resource"] == "docs"
    assert point.tags["strongroom:job"] == job.id
    assert "strongroom:rule" not in point.tags
    assert point.metadata["source"] == {"type": "files", "resource": "docs"}
    assert point.metadata["result"]["counts"]["files"] == 4
    assert point.completed_at is not None and point.created_at <= point.completed_at
    assert ops.scratch_left() == []


def test_a_rule_gives_the_vault_tags_lifecycle_and_retry_policy(ops: Ops, tmp_path: Path) -> None:
    ops.add_vault("archive")
    ops.files("docs", make_tree(tmp_path / "data"))
    rule = ops.rule(
        "daily",
        "keep",
        vault="archive",
        lifecycle={"move_to_cold_after_days": 7, "delete_after_days": 30},
        recovery_point_tags={"team": "ops"},
        retry_policy={"max_attempts": 5, "interval_seconds": 1},
    )

    job = ops.backup("docs", rule=rule)

    assert job.state is JobState.COMPLETED, job.error
    assert (job.vault, job.rule, job.max_attempts) == ("archive", "daily/keep", 5)
    point = ops.point(job.result["point_id"] if job.result else "")
    assert point.vault == "archive"
    assert point.tags["team"] == "ops"
    assert point.tags["strongroom:rule"] == "daily/keep"
    assert point.move_to_cold_at == point.created_at + timedelta(days=7)
    assert point.delete_at == point.created_at + timedelta(days=30)
    assert ops.vault_point_ids("main") == []


def test_without_a_vault_or_rule_the_one_rule_selecting_the_resource_is_used(
    ops: Ops, tmp_path: Path
) -> None:
    ops.add_vault("archive")
    ops.files("docs", make_tree(tmp_path / "data"))
    ops.files("other", make_tree(tmp_path / "other"))
    ops.rule("nightly", "keep", vault="archive", selects=("docs",))

    job = ops.service.start_backup("docs")
    assert (job.rule, job.vault) == ("nightly/keep", "archive")
    assert ops.run(job).state is JobState.COMPLETED

    ops.rule("weekly", "long", vault="archive", selects=("docs", "other"))
    with pytest.raises(ConfigError, match="2 rules select 'docs': nightly/keep, weekly/long"):
        ops.service.start_backup("docs")
    assert ops.service.start_backup("other").rule == "weekly/long"


def test_a_second_backup_of_a_resource_is_refused_while_one_is_queued(
    ops: Ops, tmp_path: Path
) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    first = ops.service.start_backup("docs", "main")

    with pytest.raises(ConflictError, match=first.id):
        ops.service.start_backup("docs", "main")

    assert ops.run(first).state is JobState.COMPLETED
    assert ops.backup("docs").state is JobState.COMPLETED  # free again once it ended


def test_start_backup_refuses_bad_requests(
    ops: Ops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every type of the schema has a source now: take one out to see the refusal.
    monkeypatch.delitem(REGISTRY, "kubernetes")
    ops.files("docs", tmp_path)
    ops.declare(
        "events",
        KubernetesResource(type="kubernetes"),
    )
    with pytest.raises(ConfigError, match="no plan selects 'docs': name the vault"):
        ops.service.start_backup("docs")
    with pytest.raises(NotFoundError, match="nothing"):
        ops.service.start_backup("nothing", "main")
    with pytest.raises(NotFoundError):
        ops.service.start_backup("docs", "no-such-vault")
    with pytest.raises(UnsupportedError, match="kubernetes"):
        ops.service.start_backup("events", "main")
    assert ops.service.list_backups() == []


def test_a_retryable_failure_is_retried_until_the_attempts_run_out(ops: Ops) -> None:
    ops.dead_postgres("orders-db")

    job = ops.backup("orders-db", retry={"max_attempts": 3, **FAST_RETRY})

    assert job.state is JobState.FAILED
    assert job.attempt == 3
    assert job.error is not None
    assert (job.error.code, job.error.retryable) == ("NetworkError", True)
    assert states(ops, job.id) == [
        "CREATED",
        "PENDING",
        *["RUNNING", "PENDING"] * 2,
        "RUNNING",
        "FAILED",
    ]
    assert outcome(job).exit_code == 1
    assert ops.vault_point_ids() == []


def test_a_non_retryable_failure_fails_at_once(ops: Ops, tmp_path: Path) -> None:
    ops.sqlite("app-db", tmp_path / "missing.db")

    job = ops.backup("app-db", retry=FAST_RETRY)

    assert job.state is JobState.FAILED
    assert job.attempt == 1
    assert job.error is not None
    assert job.error.code == "ResourceNotFoundException"
    assert outcome(job).exit_code == 3
    assert ops.vault_point_ids() == []
    assert ops.scratch_left() == []


def test_a_partial_result_is_kept_only_where_the_rule_allows_it(ops: Ops, tmp_path: Path) -> None:
    present = make_tree(tmp_path / "present")
    ops.files("docs", present, tmp_path / "absent")

    refused = ops.backup("docs")

    assert refused.state is JobState.FAILED
    assert refused.error is not None
    assert refused.error.code == "PartialResultNotAllowed"
    assert str(tmp_path / "absent") in refused.error.message
    assert ops.vault_point_ids() == []  # the writer was aborted: nothing committed

    rule = ops.rule("daily", "lenient", allow_partial=True)
    kept = ops.backup("docs", rule=rule)

    assert kept.state is JobState.PARTIAL
    assert kept.result is not None
    assert list(kept.result["failed_parts"]) == [str(tmp_path / "absent")]
    point = ops.point(kept.result["point_id"])
    assert point.state is PointState.PARTIAL
    assert list(point.metadata["failed_parts"]) == [str(tmp_path / "absent")]
    result = outcome(kept)
    assert (result.exit_code, result.warning) == (0, True)


def _registered(source: type[Any]) -> SourceEntry:
    """The registry line of ``source``'s type, pointing at ``source`` (a class of this module)."""
    return dataclasses.replace(REGISTRY[source.type_name], source=f"{__name__}:{source.__name__}")


class _StallingSource:
    """A source that writes part of a stream, then waits until it is cancelled."""

    type_name: ClassVar[str] = "files"
    writing = threading.Event()

    def __init__(self, settings: FilesResource, **_options: Any) -> None:
        self.settings = settings

    def describe(self, context: SourceContext) -> Description:
        return Description(summary="stalls", parts=[])

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        with sink.open_stream("part") as stream:
            stream.write(b"x" * 100_000)
            self.writing.set()
            while not context.cancel.wait(0.01):
                pass
            context.check_cancelled()
        return BackupResult(metadata={})

    def restore(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject, target: JsonObject
    ) -> RestoreReport:
        raise NotImplementedError

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        raise NotImplementedError


def test_cancelling_a_running_backup_aborts_it_without_a_point(
    ops: Ops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, "files", _registered(_StallingSource))
    _StallingSource.writing.clear()
    ops.files("docs", tmp_path)
    job = ops.service.start_backup("docs", "main")
    ended: list[Any] = []
    runner = threading.Thread(target=lambda: ended.append(ops.run(job)))
    runner.start()
    assert _StallingSource.writing.wait(PATIENCE)

    asked = ops.service.cancel_job(job.id[:8], "test says stop")
    runner.join(PATIENCE)

    assert asked.state is JobState.RUNNING and asked.cancel_requested
    final = ended[0]
    assert final.state is JobState.ABORTED
    assert final.error is not None and "test says stop" in final.error.message
    assert outcome(final).exit_code == EXIT_ABORTED
    assert ops.vault_point_ids() == []
    assert ops.service.list_recovery_points() == []
    assert ops.scratch_left() == []
    with pytest.raises(IllegalTransitionError):
        ops.service.cancel_job(job.id)


class _CheckpointingSource(_StallingSource):
    """A source that keeps a checkpoint: it writes one stream and may fail after it."""

    committed: ClassVar[list[tuple[str, JsonObject]]] = []
    fail: ClassVar[bool] = False

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        with sink.open_stream("part") as stream:
            stream.write(b"checkpointed data")
        if self.fail:
            raise IntegrityError("the source failed after writing")
        return BackupResult(metadata={"offsets": {"0": 17}})

    def commit_checkpoint(self, metadata: JsonObject, point_id: str) -> None:
        self.committed.append((point_id, metadata))


def test_a_checkpoint_advances_only_for_a_recorded_point(
    ops: Ops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, "files", _registered(_CheckpointingSource))
    monkeypatch.setattr(_CheckpointingSource, "committed", [])
    ops.files("docs", tmp_path)

    monkeypatch.setattr(_CheckpointingSource, "fail", True)
    failed = ops.backup("docs")
    assert failed.state is JobState.FAILED
    assert failed.error is not None and failed.error.code == "IntegrityError"
    assert _CheckpointingSource.committed == []

    monkeypatch.setattr(_CheckpointingSource, "fail", False)
    done = ops.backup("docs")
    assert done.state is JobState.COMPLETED and done.result is not None
    assert _CheckpointingSource.committed == [(done.result["point_id"], {"offsets": {"0": 17}})]
    assert [point.id for point in ops.service.list_recovery_points()] == [done.result["point_id"]]


def test_cancelling_a_queued_job_aborts_it_at_once(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", tmp_path)
    job = ops.service.start_backup("docs", "main")

    cancelled = ops.service.cancel_job(job.id)

    assert cancelled.state is JobState.ABORTED
    assert states(ops, job.id) == ["CREATED", "PENDING", "ABORTED"]


# --- restore --------------------------------------------------------------------------------


def test_a_files_restore_writes_the_same_bytes_elsewhere(ops: Ops, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "data")
    ops.files("docs", source)
    backup = ops.backup("docs")
    assert backup.result is not None
    target = tmp_path / "restored"

    job = ops.run(ops.service.start_restore(backup.result["point_id"][:10], {"path": str(target)}))

    assert job.state is JobState.COMPLETED, job.error
    assert job.resource == "docs" and job.vault == "main"
    assert job.result is not None and job.result["ok"] is True
    restored = target / source.relative_to("/")
    assert tree_digest(restored) == tree_digest(source)
    assert ops.scratch_left() == []


def test_a_sqlite_restore_gives_the_same_rows(ops: Ops, tmp_path: Path) -> None:
    database = make_database(tmp_path / "app.db")
    ops.sqlite("app-db", database)
    backup = ops.backup("app-db")
    assert backup.state is JobState.COMPLETED, backup.error
    assert backup.result is not None
    copy = tmp_path / "copy.db"

    job = ops.run(ops.service.start_restore(backup.result["point_id"], {"path": str(copy)}))

    assert job.state is JobState.COMPLETED, job.error
    assert table_rows(copy) == table_rows(database)


def test_a_restore_with_a_bad_target_is_refused_naming_the_keys_and_queues_nothing(
    ops: Ops, tmp_path: Path
) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    backup = ops.backup("docs")
    assert backup.result is not None
    jobs_before = ops.service.jobs.list(limit=100)

    with pytest.raises(ConfigError) as raised:
        ops.service.start_restore(backup.result["point_id"], {"colour": "blue"})

    assert raised.value.exit_code == 2
    assert "'colour': unknown key" in str(raised.value)
    assert "path, original, overwrite, only, owner" in str(raised.value)
    assert ops.service.jobs.list(limit=100) == jobs_before


def test_a_restore_needs_a_point_the_catalog_knows(ops: Ops) -> None:
    point = ops.vaults.backup_streams("main", {"raw": [b"bytes"]}, metadata={}, tags={})
    with pytest.raises(NotFoundError, match="in the catalog") as raised:
        ops.service.start_restore(point.id, {"path": "/tmp/x"})
    assert "catalog rebuild" in raised.value.hint


# --- verify ---------------------------------------------------------------------------------


def test_verify_with_read_data_and_restore_test_keeps_the_evidence(
    ops: Ops, tmp_path: Path
) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    ops.sqlite("app-db", make_database(tmp_path / "app.db"))
    docs = ops.backup("docs")
    database = ops.backup("app-db")
    assert docs.result is not None and database.result is not None

    job = ops.run(
        ops.service.start_verify(docs.result["point_id"], read_data=True, restore_test=True)
    )

    assert job.state is JobState.COMPLETED, job.error
    assert job.result is not None
    assert job.result["packs_checked"] >= 1
    assert [test["ok"] for test in job.result["restore_tests"]] == [True]
    point = ops.point(docs.result["point_id"])
    assert point.verification is not None and point.verification["ok"] is True
    assert point.verification["read_data"] is True
    assert point.restore_test is not None and point.restore_test["ok"] is True
    assert point.restore_test["checks_failed"] == 0
    assert {"name", "expected", "actual", "ok"} <= set(point.restore_test["checks"][0])
    assert ops.point(database.result["point_id"]).verification is None  # not asked for
    assert ops.scratch_left() == []


def test_verify_of_a_vault_restore_tests_the_newest_point_of_each_resource(
    ops: Ops, tmp_path: Path
) -> None:
    data = make_tree(tmp_path / "data")
    ops.files("docs", data)
    ops.sqlite("app-db", make_database(tmp_path / "app.db"))
    older = ops.backup("docs")
    (data / "new.txt").write_text("more")
    newer = ops.backup("docs")
    database = ops.backup("app-db")

    job = ops.run(ops.service.start_verify(vault="main", restore_test=True))

    assert job.state is JobState.COMPLETED, job.error
    assert job.result is not None
    tested = {test["point_id"] for test in job.result["restore_tests"]}
    assert tested == {newer.result["point_id"], database.result["point_id"]}  # type: ignore[index]
    assert ops.point(older.result["point_id"]).verification is not None  # type: ignore[index]
    assert ops.point(older.result["point_id"]).restore_test is None  # type: ignore[index]


def test_verify_names_a_point_whose_pack_was_tampered_with(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    backup = ops.backup("docs")
    assert backup.result is not None
    point_id = backup.result["point_id"]
    flip_byte_in_a_pack(ops.root / "stores" / "main")

    structure_only = ops.run(ops.service.start_verify(point_id))
    job = ops.run(ops.service.start_verify(point_id, read_data=True, retry=FAST_RETRY))

    assert structure_only.state is JobState.COMPLETED  # the index and manifests are intact
    assert job.state is JobState.FAILED
    assert job.attempt == 1
    assert job.error is not None and job.error.code == "IntegrityError"
    assert point_id in job.error.message
    assert "damaged" in job.error.message
    assert outcome(job).exit_code == 6
    evidence = ops.point(point_id).verification
    assert evidence is not None and evidence["ok"] is False
    assert evidence["damaged_streams"]


class MiscountingSource(SqliteSource):
    """The sqlite source, with one row more recorded for ``orders`` than the backup saw."""

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        metadata["tables"]["orders"]["rows"] += 1
        return super().restore_test(context, reader, metadata)


def test_a_restore_test_with_a_failing_check_fails_the_verify(
    ops: Ops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops.sqlite("app-db", make_database(tmp_path / "app.db"))
    backup = ops.backup("app-db")
    assert backup.result is not None
    point_id = backup.result["point_id"]
    monkeypatch.setitem(REGISTRY, "sqlite", _registered(MiscountingSource))

    job = ops.run(ops.service.start_verify(point_id, restore_test=True))

    assert job.state is JobState.FAILED
    assert job.error is not None
    assert point_id in job.error.message
    assert "orders" in job.error.message
    evidence = ops.point(point_id).restore_test
    assert evidence is not None and evidence["ok"] is False
    assert evidence["checks_failed"] >= 1


def test_verify_needs_exactly_one_of_point_and_vault(ops: Ops) -> None:
    with pytest.raises(ConfigError):
        ops.service.start_verify()
    with pytest.raises(ConfigError):
        ops.service.start_verify("abcdef", vault="main")


# --- listing and describing -----------------------------------------------------------------


def test_jobs_and_points_are_listed_and_found_by_prefix(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    ops.sqlite("app-db", tmp_path / "missing.db")
    good = ops.backup("docs")
    bad = ops.backup("app-db")

    assert [job.id for job in ops.service.list_backups()] == [bad.id, good.id]
    assert [job.id for job in ops.service.list_backups(states=[JobState.FAILED])] == [bad.id]
    assert [job.id for job in ops.service.list_backups(resource="docs")] == [good.id]
    points = ops.service.list_recovery_points(vault="main")
    assert [point.job_id for point in points] == [good.id]
    assert ops.service.list_recovery_points(resource="app-db") == []
    assert ops.service.describe_job(good.id[:8]).job.id == good.id
    with pytest.raises(NotFoundError):
        ops.service.describe_job("0000000000")
    with pytest.raises(NotFoundError):
        ops.service.point("abc")  # too short to be a prefix


def test_the_handlers_cover_backup_restore_verify_and_copy(ops: Ops) -> None:
    assert {kind.value for kind in handlers(ops.context)} == {"backup", "restore", "verify", "copy"}

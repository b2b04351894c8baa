"""Verify compares the vault's recovery points with the catalog's (issue #12, item 5):
a point deleted from the vault, or one that appears in it, unexplained, is a named finding
and fails verify; explained differences are not findings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from strongroom.catalog.models import RecoveryPoint
from strongroom.catalog.points import set_point_state
from strongroom.catalog.types import JobState, PointState
from tests.support.data import make_tree
from tests.unit.services.operations_support import Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    yield world
    world.close()


def _backed_up(ops: Ops, tmp_path: Path) -> tuple[str, str]:
    ops.files("docs", make_tree(tmp_path / "data"))
    kept = ops.backup("docs")
    other = ops.backup("docs")
    assert kept.result is not None and other.result is not None
    return kept.result["point_id"], other.result["point_id"]


def _manifest(ops: Ops, point_id: str) -> Path:
    return ops.root / "stores" / "main" / "manifests" / point_id


def _kinds(ops: Ops) -> dict[str, set[str]]:
    report = ops.vaults.verify("main")
    found: dict[str, set[str]] = {}
    for problem in report.problems:
        found.setdefault(problem.kind, set()).add(problem.object_name.removeprefix("manifests/"))
    return found


def test_a_point_deleted_from_the_vault_fails_verify_as_point_missing(
    ops: Ops, tmp_path: Path
) -> None:
    kept, vanished = _backed_up(ops, tmp_path)
    assert ops.vaults.verify("main").ok
    _manifest(ops, vanished).unlink()

    assert _kinds(ops) == {"point-missing": {vanished}}
    job = ops.run(ops.service.start_verify(vault="main"))
    assert job.state is JobState.FAILED
    assert job.error is not None and "point-missing" in job.error.message
    assert vanished in job.error.message and kept not in job.error.message


def test_a_point_the_catalog_does_not_know_fails_verify_as_point_unrecorded(
    ops: Ops, tmp_path: Path
) -> None:
    _, appeared = _backed_up(ops, tmp_path)
    with ops.context.catalog.session() as session:
        session.execute(delete(RecoveryPoint).where(RecoveryPoint.id == appeared))

    assert _kinds(ops) == {"point-unrecorded": {appeared}}


def test_a_deleted_point_whose_manifest_is_back_fails_verify_as_point_resurrected(
    ops: Ops, tmp_path: Path
) -> None:
    _, back = _backed_up(ops, tmp_path)
    with ops.context.catalog.session() as session:
        set_point_state(session, back, PointState.DELETED)

    assert _kinds(ops) == {"point-resurrected": {back}}


def test_explained_differences_are_not_findings(ops: Ops, tmp_path: Path) -> None:
    _, expiring = _backed_up(ops, tmp_path)
    with ops.context.catalog.session() as session:  # a deletion under way
        set_point_state(session, expiring, PointState.EXPIRED)
    _manifest(ops, expiring).unlink()
    ops.vaults.backup_streams(
        "main", {"loose": iter([b"no job, no catalog row"])}, metadata={}, tags={}
    )

    assert ops.vaults.verify("main").ok
    assert ops.run(ops.service.start_verify(vault="main")).state is JobState.COMPLETED

"""catalog rebuild: recovery-point rows recreated from the vault manifests."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.catalog.points import get_recovery_point, list_recovery_points, set_point_state
from strongroom.catalog.types import PointState
from strongroom.errors import NotFoundError
from strongroom.services.context import AppContext
from strongroom.services.declare.apply import ApplyService
from strongroom.services.vaults.rebuild import CatalogRebuild
from strongroom.services.vaults.service import VaultService
from tests.unit.services.apply_support import config_text, loaded, new_context


@pytest.fixture
def context(tmp_path: Path) -> Iterator[AppContext]:
    context = new_context(tmp_path / "home")
    ApplyService(context).apply(loaded(config_text(tmp_path)))
    yield context
    context.close()


def backup(context: AppContext, vault: str, data: bytes, **tags: str) -> str:
    point = VaultService(context).backup_streams(
        vault,
        {"data": io.BytesIO(data)},
        metadata={"source": {"type": "test"}},
        tags={key.replace("_", ":"): value for key, value in tags.items()},
    )
    return point.id


def rows(context: AppContext, vault: str | None = None) -> dict[str, PointState]:
    with context.catalog.session(readonly=True) as session:
        return {point.id: point.state for point in list_recovery_points(session, vault=vault)}


def test_rebuild_records_attributed_points_and_reports_the_others(
    context: AppContext, tmp_path: Path
) -> None:
    first = backup(
        context,
        "prod",
        b"one" * 1000,
        strongroom_resource="app-db",
        strongroom_rule="nightly/daily",
        strongroom_job="no-such-job",
    )
    second = backup(context, "archive", b"two" * 1000, strongroom_resource="uploads")
    untagged = backup(context, "prod", b"three" * 1000)
    stranger = backup(context, "prod", b"four" * 1000, strongroom_resource="ghost")

    report = CatalogRebuild(context).rebuild()

    assert report.ok
    assert report.totals() == {
        "manifests": 4,
        "recorded": 2,
        "present": 0,
        "revived": 0,
        "missing": 0,
        "skipped": 2,
        "damaged": 0,
    }
    prod = next(vault for vault in report.vaults if vault.vault == "prod")
    assert "no strongroom:resource tag" in prod.skipped[untagged]
    assert prod.skipped[stranger] == "resource 'ghost' is not registered"
    assert rows(context) == {first: PointState.AVAILABLE, second: PointState.AVAILABLE}
    with context.catalog.session(readonly=True) as session:
        point = get_recovery_point(session, first)
        assert point.resource.name == "app-db"
        assert point.vault.name == "prod"
        assert point.job_id is None
        assert point.logical_size == 3000
        assert point.tags["strongroom:rule"] == "nightly/daily"
        assert point.metadata_ == {"source": {"type": "test"}}
        assert point.delete_at == point.created_at + timedelta(days=30)
        assert point.move_to_cold_at is None

    again = CatalogRebuild(context).rebuild()
    assert (again.totals()["recorded"], again.totals()["present"]) == (0, 2)


def test_rebuild_marks_vanished_points_deleted_and_revives_existing_ones(
    context: AppContext, tmp_path: Path
) -> None:
    kept = backup(context, "prod", b"kept" * 1000, strongroom_resource="app-db")
    gone = backup(context, "prod", b"gone" * 1000, strongroom_resource="app-db")
    CatalogRebuild(context).rebuild()
    (tmp_path / "vault-prod" / "manifests" / gone).unlink()
    with context.catalog.session() as session:
        set_point_state(session, kept, PointState.DELETED)

    report = CatalogRebuild(context).rebuild(vault="prod")

    [prod] = report.vaults
    assert (prod.manifests, prod.missing, prod.revived) == (1, 1, 1)
    assert rows(context) == {kept: PointState.AVAILABLE, gone: PointState.DELETED}


def test_a_vault_that_cannot_be_opened_is_reported_and_the_others_rebuilt(
    context: AppContext, tmp_path: Path
) -> None:
    point = backup(context, "archive", b"x" * 1000, strongroom_resource="uploads")
    (tmp_path / "keys" / "prod.key").unlink()

    report = CatalogRebuild(context).rebuild()

    assert not report.ok
    errors = {vault.vault: vault.error for vault in report.vaults}
    assert errors["archive"] is None
    assert errors["prod"] is not None and "prod.key does not exist" in errors["prod"]
    assert rows(context) == {point: PointState.AVAILABLE}


def test_rebuilding_an_unknown_vault_is_not_found(context: AppContext) -> None:
    with pytest.raises(NotFoundError):
        CatalogRebuild(context).rebuild(vault="nope")

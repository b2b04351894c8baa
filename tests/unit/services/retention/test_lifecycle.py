"""The lifecycle runner over simulated days: moves to each kind of cold tier, deletions,
and what keeps a point (vault lock, legal hold, cold tier minimum)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.catalog.points import get_recovery_point, record_recovery_point
from strongroom.catalog.resources import get_resource, upsert_vault
from strongroom.catalog.types import PointState, Tier
from strongroom.services.retention.cold_tier import COPY_OF_KEY, open_cold_vault
from strongroom.services.retention.deletion import claim
from strongroom.services.retention.legal_hold import LegalHoldService
from strongroom.services.retention.lifecycle import LifecycleReport, LifecycleService
from strongroom.services.retention.lock import VaultLockService, parse_lock
from tests.support.catalog import T0
from tests.unit.services.retention_support import DAY, World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.close()


def outcomes(report: LifecycleReport) -> list[tuple[str, str, str]]:
    return [(a.point_id, a.action, a.outcome) for a in report.actions]


def test_same_store_points_go_cold_on_day_7_and_are_deleted_on_day_30(world: World) -> None:
    world.add_vault("main", cold_tier={"kind": "same-store"})
    point = world.backup("main", cold_after_days=7, delete_after_days=30)

    world.advance_to_day(6)
    assert LifecycleService(world.context).run().actions == []

    moved_at = world.advance_to_day(7)
    report = LifecycleService(world.context).run()
    assert outcomes(report) == [(point, "move_to_cold", "moved")]
    row = world.point(point)
    assert (row.tier, row.cold_since, row.cold_point_id) == (Tier.COLD, moved_at, None)
    assert world.vault_point_ids("main") == [point]  # same store: the data stays put

    world.advance_to_day(29)
    assert LifecycleService(world.context).run().actions == []

    world.advance_to_day(30)
    report = LifecycleService(world.context).run(actor="ops@host")
    assert outcomes(report) == [(point, "delete", "deleted")]
    assert world.point(point).state == PointState.DELETED
    assert world.vault_point_ids("main") == []
    [moved] = world.events("recovery_point.moved_to_cold")
    [deleted] = world.events("recovery_point.deleted")
    assert (moved.subject, moved.payload["tier"]) == (point, "same-store")
    assert (deleted.subject, deleted.payload["actor"], deleted.at) == (
        point,
        "ops@host",
        T0 + 30 * DAY,
    )


def test_separate_store_moves_copy_check_and_drop_the_warm_manifest(world: World) -> None:
    config = world.add_vault(
        "main", cold_tier={"kind": "separate-store", "url": world.cold_url("main")}
    )
    data = bytes(range(256)) * 5000
    point = world.backup("main", data, cold_after_days=7, delete_after_days=30)

    world.advance_to_day(8)
    report = LifecycleService(world.context).run()

    assert outcomes(report) == [(point, "move_to_cold", "moved")]
    row = world.point(point)
    assert row.tier == Tier.COLD and row.cold_point_id is not None
    assert world.vault_point_ids("main") == []
    with open_cold_vault(world.context, config, create=False) as cold:
        assert cold.point_ids() == [row.cold_point_id]
        copy = cold.point(row.cold_point_id)
        assert copy.metadata[COPY_OF_KEY]["point_id"] == point
        assert copy.tags == {"env": "test"}
        with cold.reader(row.cold_point_id) as reader:
            assert reader.read_stream("dump.sql") == data

    world.advance_to_day(30)
    assert outcomes(LifecycleService(world.context).run(gc=True)) == [(point, "delete", "deleted")]
    with open_cold_vault(world.context, config, create=False) as cold:
        assert cold.point_ids() == []


def test_a_vault_without_cold_tier_keeps_points_warm(world: World) -> None:
    world.add_vault("main")
    point = world.backup("main", cold_after_days=7, delete_after_days=30)

    world.advance_to_day(8)
    report = LifecycleService(world.context).run()

    assert outcomes(report) == [(point, "move_to_cold", "skipped")]
    assert "has no cold tier" in report.actions[0].detail
    assert world.point(point).tier == Tier.WARM


def test_a_dry_run_reports_and_changes_nothing(world: World) -> None:
    world.add_vault("main", cold_tier={"kind": "same-store"})
    expired = world.backup("main", b"a" * 5000, delete_after_days=3)
    cooling = world.backup("main", b"b" * 5000, cold_after_days=2, delete_after_days=30)

    world.advance_to_day(5)
    report = LifecycleService(world.context).run(dry_run=True)

    assert outcomes(report) == [
        (expired, "delete", "would_delete"),
        (cooling, "move_to_cold", "would_move"),
    ]
    assert world.point(expired).state == PointState.AVAILABLE
    assert world.point(cooling).tier == Tier.WARM
    assert sorted(world.vault_point_ids("main")) == sorted([expired, cooling])
    assert world.events("recovery_point.*", "lifecycle.*") == []


def test_a_vault_lock_keeps_points_until_the_minimum_retention(world: World) -> None:
    world.add_vault("main")
    VaultLockService(world.context).lock(
        "main", parse_lock("governance", 60, None, None), actor="admin"
    )
    point = world.backup("main", delete_after_days=30)

    world.advance_to_day(30)
    report = LifecycleService(world.context).run()

    assert outcomes(report) == [(point, "delete", "kept")]
    assert report.actions[0].until == T0 + 60 * DAY
    assert "min_retention_days 60" in report.actions[0].detail
    assert world.vault_point_ids("main") == [point]

    world.advance_to_day(60)
    assert outcomes(LifecycleService(world.context).run()) == [(point, "delete", "deleted")]


def test_a_legal_hold_blocks_deletion_but_not_the_move_to_cold(world: World) -> None:
    world.add_vault("main", cold_tier={"kind": "same-store"})
    point = world.backup("main", cold_after_days=7, delete_after_days=30)
    holds = LegalHoldService(world.context)
    holds.add(point, reason="case 2031-17", actor="counsel")

    world.advance_to_day(7)
    assert outcomes(LifecycleService(world.context).run()) == [(point, "move_to_cold", "moved")]

    world.advance_to_day(31)
    report = LifecycleService(world.context).run()
    assert outcomes(report) == [(point, "delete", "kept")]
    assert "legal hold" in report.actions[0].detail and "case 2031-17" in report.actions[0].detail
    assert world.point(point).state == PointState.AVAILABLE
    assert world.vault_point_ids("main") == [point]

    holds.remove(point, actor="counsel", reason="case closed")
    assert outcomes(LifecycleService(world.context).run()) == [(point, "delete", "deleted")]


def test_a_cold_tier_minimum_keeps_points_it_holds(world: World) -> None:
    world.add_vault(
        "main",
        cold_tier={
            "kind": "separate-store",
            "url": world.cold_url("main"),
            "min_storage_days": 10,
        },
    )
    point = world.backup("main", cold_after_days=7, delete_after_days=12)

    world.advance_to_day(7)
    LifecycleService(world.context).run()
    world.advance_to_day(12)
    report = LifecycleService(world.context).run()

    assert outcomes(report) == [(point, "delete", "kept")]
    assert report.actions[0].until == T0 + 17 * DAY
    world.advance_to_day(17)
    assert outcomes(LifecycleService(world.context).run()) == [(point, "delete", "deleted")]


def test_a_deletion_cut_short_after_its_claim_is_finished_by_the_next_run(world: World) -> None:
    world.add_vault("main")
    point = world.backup("main", delete_after_days=30)
    world.advance_to_day(31)
    with world.context.catalog.session() as session:  # a run that died after step 1
        claim(session, get_recovery_point(session, point))

    report = LifecycleService(world.context).run()

    assert outcomes(report) == [(point, "delete", "deleted")]
    assert world.point(point).state == PointState.DELETED
    assert world.vault_point_ids("main") == []


def test_a_run_limited_to_one_vault_leaves_the_others(world: World) -> None:
    world.add_vault("main")
    world.add_vault("other")
    kept = world.backup("other", delete_after_days=1)
    gone = world.backup("main", delete_after_days=1)

    world.advance_to_day(2)
    report = LifecycleService(world.context).run(vault="main", gc=True)

    assert outcomes(report) == [(gone, "delete", "deleted")]
    assert list(report.gc) == ["main"]
    assert world.point(kept).state == PointState.AVAILABLE
    [summary] = world.events("lifecycle.run.completed")
    assert summary.payload["counts"] == {"deleted": 1}


def test_a_vault_that_cannot_be_read_fails_its_points_and_not_the_run(world: World) -> None:
    world.add_vault("main")
    gone = world.backup("main", delete_after_days=1)
    with world.context.catalog.session() as session:
        broken = upsert_vault(session, name="broken", url="file:///nowhere", at=T0)
        resource = get_resource(session, "orders-db")
        record_recovery_point(
            session,
            point_id="f" * 64,
            vault_id=broken.id,
            resource_id=resource.id,
            created_at=T0,
            delete_at=T0 + DAY,
        )

    world.advance_to_day(2)
    report = LifecycleService(world.context).run()

    assert sorted(outcomes(report)) == sorted(
        [(gone, "delete", "deleted"), ("f" * 64, "delete", "failed")]
    )
    assert not report.ok

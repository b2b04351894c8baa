"""Legal holds: placed and lifted with a record, and they stop every deletion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.catalog.types import PointState
from strongroom.errors import ConfigError, NotFoundError, PolicyError
from strongroom.services.retention.deletion import delete_recovery_point
from strongroom.services.retention.legal_hold import LegalHoldService
from tests.support.catalog import T0
from tests.unit.services.retention_support import DAY, World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    world.add_vault("main")
    yield world
    world.close()


@pytest.fixture
def holds(world: World) -> LegalHoldService:
    return LegalHoldService(world.context)


def test_a_hold_is_listed_with_its_reason_author_and_time_and_recorded(
    world: World, holds: LegalHoldService
) -> None:
    point = world.backup("main")
    world.advance_to_day(2)

    hold = holds.add(point[:8], reason="  litigation 2031-17  ", actor="counsel@host")

    assert (hold.point_id, hold.reason, hold.by, hold.at) == (
        point,
        "litigation 2031-17",
        "counsel@host",
        T0 + 2 * DAY,
    )
    assert [h.point_id for h in holds.list()] == [point]
    assert holds.list(vault="elsewhere") == []

    world.advance_to_day(3)
    released = holds.remove(point, actor="counsel@host", reason="settled")
    assert not released.held and released.reason is None
    assert holds.list() == []
    added, removed = world.events("recovery_point.legal_hold.*")
    assert (added.type, added.payload["reason"], added.at) == (
        "recovery_point.legal_hold.added",
        "litigation 2031-17",
        T0 + 2 * DAY,
    )
    assert (removed.payload["reason"], removed.payload["placed_for"]) == (
        "settled",
        "litigation 2031-17",
    )


def test_a_held_point_cannot_be_deleted_by_hand(world: World, holds: LegalHoldService) -> None:
    point = world.backup("main", delete_after_days=1)
    holds.add(point, reason="audit", actor="counsel")
    world.advance_to_day(5)

    with pytest.raises(PolicyError, match="legal hold") as refused:
        delete_recovery_point(world.context, point, actor="ops")

    assert "legal-hold remove" in refused.value.hint
    assert world.point(point).state == PointState.AVAILABLE
    assert world.vault_point_ids("main") == [point]

    holds.remove(point, actor="counsel")
    delete_recovery_point(world.context, point, actor="ops")
    assert world.point(point).state == PointState.DELETED


def test_holds_need_a_reason_a_live_point_and_no_second_hold(
    world: World, holds: LegalHoldService
) -> None:
    point = world.backup("main")
    with pytest.raises(ConfigError, match="reason"):
        holds.add(point, reason=" ", actor="counsel")
    holds.add(point, reason="first", actor="counsel")
    with pytest.raises(ConfigError, match="already on legal hold"):
        holds.add(point, reason="second", actor="counsel")
    with pytest.raises(NotFoundError):
        holds.add("0" * 64, reason="x", actor="counsel")

    other = world.backup("main", b"other data" * 100)
    with pytest.raises(ConfigError, match="not on legal hold"):
        holds.remove(other, actor="counsel")
    delete_recovery_point(world.context, other, actor="ops")
    with pytest.raises(ConfigError, match="deleted"):
        holds.add(other, reason="too late", actor="counsel")

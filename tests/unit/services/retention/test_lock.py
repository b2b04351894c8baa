"""Vault lock: early deletes refused, compliance immutable after its grace period,
governance lifted only by a privileged action, every refusal recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.catalog.resources import get_vault
from strongroom.catalog.types import PointState
from strongroom.errors import ConfigError, PolicyError
from strongroom.services.retention.deletion import delete_recovery_point
from strongroom.services.retention.lock import (
    VaultLockService,
    check_declared_locks,
    parse_lock,
    register_vault_with_lock,
)
from strongroom.services.retention.lock_state import LockState
from strongroom.services.vaults.service import VaultService
from tests.support.catalog import T0
from tests.unit.services.retention_support import DAY, World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    world.add_vault("main")
    yield world
    world.close()


@pytest.fixture
def locks(world: World) -> VaultLockService:
    return VaultLockService(world.context)


def test_deleting_before_the_minimum_retention_is_refused_naming_the_date(
    world: World, locks: VaultLockService
) -> None:
    locks.lock("main", parse_lock("compliance", 90, None, 3), actor="admin")
    point = world.backup("main", delete_after_days=30)
    world.advance_to_day(45)

    with pytest.raises(PolicyError) as refused:
        delete_recovery_point(world.context, point, actor="alice@host", reason="cleanup")

    assert "min_retention_days 90" in refused.value.message
    assert (T0 + 90 * DAY).isoformat(timespec="seconds") in refused.value.message
    assert "becomes deletable on" in refused.value.hint
    assert world.point(point).state == PointState.AVAILABLE
    assert world.vault_point_ids("main") == [point]
    [event] = world.events("recovery_point.delete_refused")
    assert (event.subject, event.payload["actor"]) == (point, "alice@host")

    world.advance_to_day(90)
    deleted = delete_recovery_point(world.context, point[:10], actor="alice@host")
    assert deleted.point_id == point
    assert world.point(point).state == PointState.DELETED
    assert world.vault_point_ids("main") == []


def test_a_compliance_lock_changes_in_its_grace_period_then_is_immutable(
    world: World, locks: VaultLockService
) -> None:
    first = locks.lock("main", parse_lock("compliance", 30, 400, 3), actor="admin")
    assert (first.action, first.after.changeable_until) == ("set", T0 + 3 * DAY)

    world.advance_to_day(2)
    changed = locks.lock("main", parse_lock("compliance", 60, 400, 3), actor="admin")
    assert (changed.action, changed.after.min_retention_days) == ("changed", 60)
    assert changed.after.changeable_until == T0 + 5 * DAY  # a change restarts the grace

    world.advance_to_day(5)
    with pytest.raises(PolicyError, match="immutable"):
        locks.lock("main", parse_lock("compliance", 1, 400, 3), actor="mallory@host")
    with pytest.raises(PolicyError, match="--privileged or not"):
        locks.unlock("main", actor="mallory@host", privileged=True, reason="please")

    status = locks.status("main")
    assert status.state.min_retention_days == 60
    assert "immutable since" in status.summary
    refused = [event for event in status.history if event.type == "vault.lock.change_refused"]
    assert [(event.actor, event.at) for event in refused] == [
        ("mallory@host", T0 + 5 * DAY),
        ("mallory@host", T0 + 5 * DAY),
    ]
    assert refused[0].details["attempted"]["min_retention_days"] == 1
    assert refused[1].details["attempted"] is None  # an attempt to remove it
    assert refused[1].details["reason"] == "please"


def test_restating_a_lock_changes_nothing_and_restarts_no_grace(
    world: World, locks: VaultLockService
) -> None:
    locks.lock("main", parse_lock("compliance", 30, None, 3), actor="admin")
    world.advance_to_day(2)

    again = locks.lock("main", parse_lock("compliance", 30, None, 10), actor="admin")

    assert again.action == "unchanged"
    assert again.after.changeable_until == T0 + 3 * DAY
    assert [e.type for e in locks.status("main").history] == ["vault.lock.set"]


def test_a_compliance_lock_can_be_removed_during_its_grace_period(
    world: World, locks: VaultLockService
) -> None:
    locks.lock("main", parse_lock("compliance", 30, None, 3), actor="admin")
    world.advance_to_day(1)

    removed = locks.unlock("main", actor="admin")

    assert removed.action == "removed"
    assert not locks.status("main").state.locked


def test_a_governance_lock_is_lifted_only_by_a_privileged_action_with_a_reason(
    world: World, locks: VaultLockService
) -> None:
    locks.lock("main", parse_lock("governance", 30, None, None), actor="admin")

    with pytest.raises(PolicyError, match="privileged action"):
        locks.unlock("main", actor="bob@host")
    with pytest.raises(PolicyError, match="privileged action"):
        locks.lock("main", parse_lock("governance", 1, None, None), actor="bob@host")
    with pytest.raises(ConfigError, match="needs a reason"):
        locks.unlock("main", actor="bob@host", privileged=True)
    assert locks.status("main").state.mode == "governance"

    lifted = locks.unlock("main", actor="root@host", privileged=True, reason="INC-42 migration")

    assert lifted.action == "removed"
    history = locks.status("main").history
    assert [event.type for event in history] == [
        "vault.lock.set",
        "vault.lock.change_refused",
        "vault.lock.change_refused",
        "vault.lock.removed",
    ]
    assert history[-1].actor == "root@host"
    assert history[-1].details["privileged"] is True
    assert history[-1].details["reason"] == "INC-42 migration"
    assert history[-1].details["before"]["mode"] == "governance"


def test_lock_settings_are_checked_like_the_configuration(locks: VaultLockService) -> None:
    with pytest.raises(ConfigError, match="changeable_for_days"):
        parse_lock("compliance", 30, None, None)
    with pytest.raises(ConfigError, match="max_retention_days"):
        parse_lock("governance", 30, 10, None)
    with pytest.raises(ConfigError, match="not locked"):
        locks.unlock("main", actor="admin")


def test_applying_a_config_keeps_a_lock_it_does_not_declare(
    world: World, locks: VaultLockService
) -> None:
    locks.lock("main", parse_lock("compliance", 30, None, 3), actor="admin")
    world.advance_to_day(10)
    config = world.vault_config("main")

    with world.context.catalog.session() as session:
        change = register_vault_with_lock(session, "main", config, world.clock.now(), actor="apply")

    assert change.action == "unchanged"
    state = locks.status("main").state
    assert (state.mode, state.min_retention_days, state.changeable_until) == (
        "compliance",
        30,
        T0 + 3 * DAY,
    )


def test_a_declared_lock_follows_the_same_rules(world: World, locks: VaultLockService) -> None:
    locks.lock("main", parse_lock("compliance", 30, None, 3), actor="admin")
    world.advance_to_day(10)
    weaker = world.vault_config(
        "main", lock={"mode": "compliance", "min_retention_days": 1, "changeable_for_days": 3}
    )

    with world.context.catalog.session(readonly=True) as session:
        [finding] = check_declared_locks(session, {"main": weaker}, now=world.clock.now())
    assert finding.location == ("vaults", "main", "lock")
    assert "immutable" in finding.message

    with pytest.raises(PolicyError), world.context.catalog.session() as session:
        register_vault_with_lock(session, "main", weaker, world.clock.now(), actor="apply")
    assert locks.status("main").state.min_retention_days == 30


def test_a_declared_lock_on_an_unlocked_vault_starts_its_grace_period(world: World) -> None:
    world.advance_to_day(1)
    declared = world.vault_config(
        "main", lock={"mode": "compliance", "min_retention_days": 7, "changeable_for_days": 3}
    )

    with world.context.catalog.session() as session:
        change = register_vault_with_lock(
            session, "main", declared, world.clock.now(), actor="apply"
        )
        state = LockState.of(get_vault(session, "main"))

    assert change.action == "set"
    assert state.changeable_until == T0 + 4 * DAY
    [event] = world.events("vault.lock.set")
    assert event.payload["actor"] == "apply"


def test_lock_descriptions_say_what_can_still_change() -> None:
    now = T0
    assert LockState("v").describe(now) == "not locked"
    assert "privileged" in LockState("v", "governance", 7).describe(now)
    grace = LockState("v", "compliance", 7, None, T0 + DAY)
    assert "changeable until" in grace.describe(now)
    assert "immutable since" in grace.describe(T0 + 2 * DAY)
    assert LockState("v", "compliance", 7).immutable(now)  # no recorded grace: immutable


def test_a_file_vault_lock_is_said_to_be_enforced_by_strongroom_only(
    world: World, locks: VaultLockService
) -> None:
    vaults = VaultService(world.context)
    assert vaults.lock_enforcement("main") == "not locked"

    locks.lock("main", parse_lock("governance", 7, None, None), actor="admin")

    assert vaults.lock_enforcement("main") == (
        "governance lock, enforced by strongroom only (a file store cannot refuse a delete)"
    )

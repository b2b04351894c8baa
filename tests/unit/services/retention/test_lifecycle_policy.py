"""The apply-time retention check: lifecycle rules against vault locks and cold tiers.

The seed's ``continuous-backup`` rule (cold after 7 days, deleted after 30) is answered for
every kind of cold tier.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.config.issues import format_path
from strongroom.config.load import load_text
from strongroom.config.plans import PlanConfig
from strongroom.config.vaults import VaultConfig
from strongroom.errors import PolicyError
from strongroom.services.declare.apply import ApplyService
from strongroom.services.declare.checks import declared_lock_check, plan_retention_check
from strongroom.services.retention.lock import VaultLockService, parse_lock
from strongroom.services.retention.policy import check_plan_policy
from tests.unit.services.retention_support import World

CONTINUOUS = {
    "name": "continuous-backup",
    "schedule": "cron(0 */6 * * ? *)",
    "target_vault": "prod",
    "lifecycle": {"move_to_cold_after_days": 7, "delete_after_days": 30},
}
WEEKLY = {
    "name": "weekly-backup",
    "schedule": "cron(0 2 ? * SUN *)",
    "target_vault": "prod",
    "lifecycle": {"move_to_cold_after_days": 90, "delete_after_days": 365},
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.close()


def plan(*rules: dict[str, Any]) -> PlanConfig:
    return PlanConfig.model_validate({"rules": list(rules), "selections": []})


def vault(url: str = "file:///srv/prod", **settings: Any) -> VaultConfig:
    return VaultConfig.model_validate(
        {"url": url, "key": {"provider": "env", "variable": "KEY"}, **settings}
    )


def problems(world: World, plan_config: PlanConfig, vaults: dict[str, VaultConfig]) -> list[str]:
    with world.context.catalog.session(readonly=True) as session:
        findings = check_plan_policy(
            session, plan_config, vaults, plan_name="ecommerce", now=world.clock.now()
        )
    return [f"{format_path(finding.location)}: {finding.message}" for finding in findings]


def test_continuous_rule_and_a_vault_without_cold_tier(world: World) -> None:
    [problem] = problems(world, plan(CONTINUOUS), {"prod": vault()})

    assert problem.startswith(
        "plans.ecommerce.rules[0].lifecycle.move_to_cold_after_days: rule 'continuous-backup'"
    )
    assert "has no cold tier" in problem


def test_continuous_rule_and_a_same_store_tier_without_minimum_is_accepted(world: World) -> None:
    prod = vault(cold_tier={"kind": "same-store"})

    assert problems(world, plan(CONTINUOUS), {"prod": prod}) == []


def test_continuous_rule_and_a_90_day_glacier_tier_is_refused_with_the_numbers(
    world: World,
) -> None:
    prod = vault("s3://backups/prod", cold_tier={"kind": "same-store", "storage_class": "GLACIER"})

    found = problems(world, plan(CONTINUOUS), {"prod": prod})
    [problem] = [problem for problem in found if "delete_after_days" in problem]
    [unsupported] = [problem for problem in found if "same-store move" in problem]
    assert "use a separate-store cold tier" in unsupported

    assert problem.startswith("plans.ecommerce.rules[0].lifecycle.delete_after_days: ")
    for words in (
        "rule 'continuous-backup'",
        "after 7 days",
        "after 30 days",
        "23 days in cold storage",
        "at least 90 days",
        "at least 97",
    ):
        assert words in problem


def test_continuous_rule_and_separate_store_tiers(world: World) -> None:
    plain = vault(cold_tier={"kind": "separate-store", "url": "file:///srv/cold"})
    minimum = vault(
        cold_tier={"kind": "separate-store", "url": "file:///srv/cold", "min_storage_days": 90}
    )
    archive = vault(
        cold_tier={"kind": "separate-store", "url": "s3://archive/prod", "storage_class": "GLACIER"}
    )

    assert problems(world, plan(CONTINUOUS), {"prod": plain}) == []
    [too_short] = problems(world, plan(CONTINUOUS), {"prod": minimum})
    assert "23 days in cold storage" in too_short and "at least 90 days" in too_short
    [too_short_for_glacier] = problems(world, plan(CONTINUOUS), {"prod": archive})
    assert "at least 90 days" in too_short_for_glacier
    archive_in_its_default_class = vault(
        cold_tier={"kind": "separate-store", "url": "s3://archive/prod", "min_storage_days": 7}
    )
    assert problems(world, plan(CONTINUOUS), {"prod": archive_in_its_default_class}) == []


def test_a_lock_set_in_the_catalog_refuses_a_shorter_retention(world: World) -> None:
    world.add_vault("prod")
    VaultLockService(world.context).lock(
        "prod", parse_lock("compliance", 365, 2555, 3), actor="admin"
    )
    prod = world.vault_config("prod", cold_tier={"kind": "same-store"})

    [problem] = problems(world, plan(CONTINUOUS, WEEKLY), {"prod": prod})

    assert problem.startswith("plans.ecommerce.rules[0].lifecycle.delete_after_days: ")
    assert "rule 'continuous-backup'" in problem
    assert "after 30 days" in problem and "min_retention_days 365" in problem
    assert "set with 'strongroom vault lock'" in problem


def test_the_seed_long_term_vault_lock_accepts_the_weekly_rule(world: World) -> None:
    long_term = vault(
        cold_tier={"kind": "same-store"},
        lock={
            "mode": "compliance",
            "min_retention_days": 365,
            "max_retention_days": 2555,
            "changeable_for_days": 3,
        },
    )

    assert problems(world, plan(WEEKLY), {"prod": long_term}) == []


def test_a_maximum_retention_refuses_keeping_points_forever(world: World) -> None:
    capped = vault(lock={"mode": "governance", "max_retention_days": 400})
    forever = {"name": "forever", "schedule": "rate(1 day)", "target_vault": "prod"}

    [problem] = problems(world, plan(forever), {"prod": capped})

    assert "keeps recovery points forever" in problem and "max_retention_days 400" in problem


def test_a_declared_lock_replaces_a_catalog_lock_still_in_its_grace_period(world: World) -> None:
    world.add_vault("prod")
    locks = VaultLockService(world.context)
    locks.lock("prod", parse_lock("compliance", 365, None, 3), actor="admin")
    looser = world.vault_config(
        "prod",
        cold_tier={"kind": "same-store"},
        lock={"mode": "compliance", "min_retention_days": 30, "changeable_for_days": 3},
    )

    assert problems(world, plan(CONTINUOUS), {"prod": looser}) == []

    world.advance_to_day(4)  # the catalog's lock is immutable now: it binds whatever is declared
    [problem] = problems(world, plan(CONTINUOUS), {"prod": looser})
    assert "min_retention_days 365" in problem


def _config(world: World, *rules: dict[str, Any]) -> str:
    rule_lines = "".join(
        f"""
      - name: {rule["name"]}
        schedule: "{rule["schedule"]}"
        target_vault: prod
        lifecycle: {{move_to_cold_after_days: {rule["lifecycle"]["move_to_cold_after_days"]}, \
delete_after_days: {rule["lifecycle"]["delete_after_days"]}}}"""
        for rule in rules
    )
    return f"""\
version: 1
vaults:
  prod:
    url: {(world.root / "stores" / "prod").as_uri()}
    key: {{provider: key-file, path: {world.root / "keys" / "prod"}}}
    cold_tier: {{kind: same-store}}
resources:
  db:
    type: sqlite
    path: {world.root / "app.db"}
plans:
  ecommerce:
    selections: [{{name: all, names: ["*"]}}]
    rules:{rule_lines}
"""


def test_apply_with_the_retention_checks_refuses_what_a_lock_forbids(world: World) -> None:
    service = ApplyService(world.context, checks=(plan_retention_check, declared_lock_check))
    service.apply(load_text(_config(world, WEEKLY)))
    VaultLockService(world.context).lock(
        "prod", parse_lock("compliance", 365, 2555, 3), actor="admin"
    )

    with pytest.raises(PolicyError) as refused:
        service.apply(load_text(_config(world, WEEKLY, CONTINUOUS)))

    assert "plans.ecommerce.rules[1].lifecycle.delete_after_days" in refused.value.message
    assert "min_retention_days 365" in refused.value.message


def test_locking_a_vault_names_the_applied_rules_it_disagrees_with(world: World) -> None:
    ApplyService(world.context).apply(load_text(_config(world, CONTINUOUS)))

    change = VaultLockService(world.context).lock(
        "prod", parse_lock("governance", 365, None, None), actor="admin"
    )

    assert change.action == "set"
    [warning] = change.warnings
    assert warning.startswith("rule 'continuous-backup' of plan 'ecommerce' deletes after 30 days")
    assert "min_retention_days 365" in warning

"""The lifecycle preview: when each point moves and goes, and what keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog import resources as catalog_resources
from strongroom.catalog.models import RecoveryPoint
from strongroom.catalog.types import JobKind
from strongroom.services.retention.legal_hold import LegalHoldService
from strongroom.services.retention.lifecycle import LifecycleService
from strongroom.services.retention.lifecycle_preview import LifecyclePreviewService, PointLifecycle
from strongroom.services.retention.lock import VaultLockService, parse_lock
from tests.support.catalog import T0
from tests.unit.services.retention_support import DAY, World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.close()


def by_id(world: World) -> dict[str, PointLifecycle]:
    return {point.point_id: point for point in LifecyclePreviewService(world.context).preview()}


def test_the_preview_names_the_date_and_what_sets_it(world: World) -> None:
    world.add_vault("main", cold_tier={"kind": "same-store"})
    VaultLockService(world.context).lock(
        "main", parse_lock("governance", 45, None, None), actor="admin"
    )
    plain = world.backup("main", b"plain" * 1000, cold_after_days=7, delete_after_days=60)
    locked = world.backup("main", b"locked" * 1000, cold_after_days=7, delete_after_days=30)
    held = world.backup("main", b"held" * 1000, delete_after_days=30)
    forever = world.backup("main", b"forever" * 1000)
    LegalHoldService(world.context).add(held, reason="case 9", actor="counsel")

    previews = by_id(world)

    assert previews[plain].deletes_at == T0 + 60 * DAY
    assert (
        previews[plain].move == f"moves to the same-store cold tier on {(T0 + 7 * DAY).isoformat()}"
    )
    assert previews[locked].deletes_at == T0 + 45 * DAY
    assert "held past delete_at by the vault lock" in previews[locked].expiry
    assert [reason.kind for reason in previews[locked].reasons] == ["rule", "vault_lock"]
    assert previews[held].deletes_at is None
    assert previews[held].expiry == "never while the legal hold lasts"
    assert any("case 9" in reason.message for reason in previews[held].reasons)
    assert previews[forever].deletes_at is None
    assert "no delete_after_days" in previews[forever].expiry
    assert previews[plain].to_json()["kept_by"][1]["kind"] == "vault_lock"

    world.advance_to_day(8)
    LifecycleService(world.context).run()
    moved = by_id(world)[plain]
    assert moved.tier == "cold"
    assert moved.move.startswith("moved to the same-store cold tier on")


def test_the_preview_names_the_rule_that_made_the_point(world: World) -> None:
    world.add_vault("main")
    point = world.backup("main", delete_after_days=30)
    with world.context.catalog.session() as session:
        vault = catalog_resources.get_vault(session, "main")
        plan = catalog_resources.upsert_plan(session, name="ecommerce", at=T0)
        rule = catalog_resources.upsert_rule(
            session, plan=plan, name="continuous-backup", vault=vault, at=T0
        )
        catalog_jobs.create_job(
            session,
            job_id="job-1",
            kind=JobKind.BACKUP,
            at=T0,
            max_attempts=1,
            retry_interval_seconds=1.0,
            retry_backoff_rate=1.0,
            rule_id=rule.id,
        )
        session.get_one(RecoveryPoint, point).job_id = "job-1"

    [preview] = LifecyclePreviewService(world.context).preview(vault="main")

    assert preview.rule == "'continuous-backup' of plan 'ecommerce'"
    assert preview.reasons[0].message.startswith("rule 'continuous-backup' of plan 'ecommerce'")
    assert LifecyclePreviewService(world.context).preview(vault="other") == []

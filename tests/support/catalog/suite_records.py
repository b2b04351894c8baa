"""Records suite: recovery points, failure records, events, resources and rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.catalog import Catalog, failures, open_catalog, points, resources
from strongroom.catalog import events as catalog_events
from strongroom.catalog.types import PointState, Tier
from strongroom.errors import ConflictError, NotFoundError
from tests.support.catalog import CatalogFixtures, Seeds, ids_page_by_page, later


def add_point(catalog: Catalog, point_id: str, vault: int, resource: int, seconds: float) -> None:
    with catalog.session() as session:
        points.record_recovery_point(
            session,
            point_id=point_id,
            vault_id=vault,
            resource_id=resource,
            created_at=later(seconds),
            completed_at=later(seconds + 30),
            logical_size=1000,
            stored_size=400,
            tags={"env": "prod"},
            move_to_cold_at=later(seconds + 86400),
            delete_at=later(seconds + 7 * 86400),
            metadata={"tables": {"orders": 12}, "lsn": "0/16B3748"},
        )


class RecordSuite(CatalogFixtures):
    def test_a_recovery_point_keeps_everything_it_was_given(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        add_point(catalog, "m-1", seeds.main, seeds.orders_db, 0)
        with catalog.session(readonly=True) as session:
            point = points.get_recovery_point(session, "m-1")
            assert (point.state, point.tier, point.legal_hold) == (
                PointState.AVAILABLE,
                Tier.WARM,
                False,
            )
            assert (point.logical_size, point.stored_size) == (1000, 400)
            assert point.metadata_ == {"tables": {"orders": 12}, "lsn": "0/16B3748"}
            assert point.tags == {"env": "prod"}
            assert point.completed_at == later(30)
            assert point.vault.name == "main"
            assert point.resource.name == "orders-db"

    def test_a_recovery_point_is_recorded_once(self, catalog: Catalog, seeds: Seeds) -> None:
        add_point(catalog, "m-1", seeds.main, seeds.orders_db, 0)
        with pytest.raises(ConflictError, match="already recorded"):
            add_point(catalog, "m-1", seeds.main, seeds.orders_db, 0)

    def test_points_list_newest_first_by_vault_resource_state_and_time(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        add_point(catalog, "a", seeds.main, seeds.orders_db, 0)
        add_point(catalog, "b", seeds.main, seeds.cache, 10)
        add_point(catalog, "c", seeds.dr, seeds.orders_db, 20)
        with catalog.session() as session:
            points.set_point_state(session, "a", PointState.EXPIRED)

        def ids(**filters: object) -> list[str]:
            with catalog.session(readonly=True) as session:
                return [p.id for p in points.list_recovery_points(session, **filters)]  # type: ignore[arg-type]

        assert ids() == ["c", "b", "a"]
        assert ids(vault="main") == ["b", "a"]
        assert ids(resource="orders-db") == ["c", "a"]
        assert ids(vault="main", resource="orders-db") == ["a"]
        assert ids(states=[PointState.AVAILABLE]) == ["c", "b"]
        assert ids(since=later(10), until=later(20)) == ["b"]
        assert ids(limit=2) == ["c", "b"]

    def test_lifecycle_queries_respect_tier_state_and_legal_hold(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        add_point(catalog, "old", seeds.main, seeds.orders_db, 0)
        add_point(catalog, "held", seeds.main, seeds.cache, 1)
        add_point(catalog, "new", seeds.main, seeds.billing_db, 86400 * 30)
        with catalog.session() as session:
            points.set_legal_hold(session, "held", on=True)
            points.set_tier(session, "held", Tier.COLD)
        week = later(7 * 86400 + 10)
        with catalog.session(readonly=True) as session:
            cold = [p.id for p in points.list_due_for_cold(session, now=week)]
            delete = [p.id for p in points.list_due_for_deletion(session, now=week)]
        assert cold == ["old"]
        assert delete == ["old"]

    def test_verification_and_restore_test_evidence_is_kept(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        add_point(catalog, "p", seeds.main, seeds.orders_db, 0)
        with catalog.session() as session:
            points.record_verification(session, "p", result={"ok": True}, at=later(60))
            points.record_restore_test(session, "p", result={"ok": True, "rows": 12}, at=later(120))
        with catalog.session(readonly=True) as session:
            point = points.get_recovery_point(session, "p")
            assert (point.verification_result, point.verified_at) == ({"ok": True}, later(60))
            assert (point.restore_test_result, point.restore_tested_at) == (
                {"ok": True, "rows": 12},
                later(120),
            )
        with pytest.raises(NotFoundError), catalog.session() as session:
            points.get_recovery_point(session, "missing")

    def test_failure_records_count_attempts_until_resolved_and_survive_reopening(
        self, catalog: Catalog, seeds: Seeds, catalog_url: str, tmp_path: Path
    ) -> None:
        def fail(seconds: float) -> int:
            with catalog.session() as session:
                record = failures.record_failed_attempt(
                    session,
                    component="backup/orders-db/daily/nightly",
                    at=later(seconds),
                    error_code="NetworkError",
                    error_message=f"reset at {seconds}",
                    resource_id=seeds.orders_db,
                    rule_id=seeds.rule,
                )
                return record.attempts

        assert [fail(0), fail(300)] == [1, 2]
        with catalog.session() as session:
            failures.mark_escalated(session, "backup/orders-db/daily/nightly", at=later(301))

        with open_catalog(catalog_url, tmp_path) as reopened, reopened.session() as session:
            record = failures.get_failure_record(session, "backup/orders-db/daily/nightly")
            assert record is not None
            assert (record.attempts, record.escalated, record.first_at, record.last_at) == (
                2,
                True,
                later(0),
                later(300),
            )
            assert record.last_error_message == "reset at 300"
            assert [r.component for r in failures.list_failure_records(session)] == [
                "backup/orders-db/daily/nightly"
            ]

        with catalog.session() as session:
            failures.resolve(session, "backup/orders-db/daily/nightly", at=later(400))
            assert failures.list_failure_records(session) == []
        assert fail(500) == 1  # a new run of failures starts from one
        with catalog.session(readonly=True) as session:
            record = failures.get_failure_record(session, "backup/orders-db/daily/nightly")
            assert record is not None
            assert (record.first_at, record.escalated, record.resolved_at) == (
                later(500),
                False,
                None,
            )

    def test_events_are_appended_in_order_and_filtered(self, catalog: Catalog) -> None:
        with catalog.session() as session:
            for number, type in enumerate(
                [
                    "backup.job.started",
                    "backup.job.completed",
                    "restore.job.failed",
                    "backup.escalation",
                    "backup_job.completed",
                ]
            ):
                catalog_events.append_event(
                    session,
                    at=later(number),
                    type=type,
                    subject=f"job-{number % 2}",
                    payload={"number": number},
                )

        def types(**filters: object) -> list[str]:
            with catalog.session(readonly=True) as session:
                return [e.type for e in catalog_events.list_events(session, **filters)]  # type: ignore[arg-type]

        assert types(types=["backup.job.*"]) == ["backup.job.started", "backup.job.completed"]
        assert types(types=["*.failed", "backup.escalation"]) == [
            "restore.job.failed",
            "backup.escalation",
        ]
        assert types(subject="job-1") == ["backup.job.completed", "backup.escalation"]
        assert types(since=later(3)) == ["backup.escalation", "backup_job.completed"]
        with catalog.session(readonly=True) as session:
            all_events = catalog_events.list_events(session)
            after = catalog_events.list_events(session, after_id=all_events[2].id)
        assert [e.payload["number"] for e in all_events] == [0, 1, 2, 3, 4]
        assert [e.payload["number"] for e in after] == [3, 4]

    def test_resources_vaults_and_rules_are_upserted_by_name(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            updated = resources.upsert_resource(
                session,
                name="orders-db",
                type="postgres",
                at=later(60),
                connection={"host": "db1", "password": "env:ORDERS_PASSWORD"},
            )
            vault = resources.upsert_vault(
                session,
                name="main",
                url="s3://bucket/main",
                at=later(60),
                lock_mode="compliance",
                lock_min_retention_days=7,
                lock_max_retention_days=365,
                lock_changeable_until=later(3 * 86400),
            )
            rule = resources.upsert_rule(
                session,
                plan=resources.upsert_plan(session, name="daily", at=later(60)),
                name="nightly",
                vault=vault,
                at=later(60),
                retry_policy={"max_attempts": 5},
                copy_actions=[{"vault": "dr"}],
            )
            assert updated.id == seeds.orders_db
            assert updated.created_at == later(0)
            assert updated.updated_at == later(60)
            assert rule.id == seeds.rule
        with catalog.session(readonly=True) as session:
            assert resources.get_resource(session, "orders-db").connection["host"] == "db1"
            assert resources.get_vault(session, "main").lock_changeable_until == later(3 * 86400)
            assert resources.get_rule(session, "daily", "nightly").copy_actions == [{"vault": "dr"}]
            assert [r.name for r in resources.list_resources(session, type="postgres")] == [
                "billing-db",
                "orders-db",
            ]
            for lookup in (
                lambda: resources.get_resource(session, "nope"),
                lambda: resources.get_vault(session, "nope"),
                lambda: resources.get_rule(session, "daily", "nope"),
            ):
                with pytest.raises(NotFoundError):
                    lookup()

    def test_points_page_by_keyset_without_gaps_or_repeats(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        for number in range(7):  # pairs share a creation time: the id breaks the tie
            add_point(catalog, f"p-{number}", seeds.main, seeds.orders_db, number // 2)
        with catalog.session(readonly=True) as session:
            everything = [point.id for point in points.list_recovery_points(session)]
            paged = ids_page_by_page(
                lambda after: points.list_recovery_points(session, limit=3, after=after)
            )
        assert len(everything) == 7
        assert paged == everything

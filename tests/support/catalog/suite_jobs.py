"""Jobs suite: creation, optimistic transitions, guards, cancel requests, listing."""

from __future__ import annotations

import pytest

from strongroom.catalog import Catalog
from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.jobs import JobGuard
from strongroom.catalog.types import JobKind, JobState
from strongroom.errors import ConflictError, NotFoundError
from tests.support.catalog import CatalogFixtures, Seeds, add_pending, ids_page_by_page, later


class JobSuite(CatalogFixtures):
    def test_a_new_job_is_created_at_attempt_one_with_its_first_transition(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            catalog_jobs.create_job(
                session,
                job_id="j1",
                kind=JobKind.BACKUP,
                at=later(0),
                max_attempts=5,
                retry_interval_seconds=60,
                retry_backoff_rate=1.5,
                resource_id=seeds.orders_db,
                vault_id=seeds.main,
                rule_id=seeds.rule,
                params={"databases": ["orders"]},
                allow_partial=True,
            )
        with catalog.session(readonly=True) as session:
            job = catalog_jobs.get_job(session, "j1")
            transitions = catalog_jobs.list_transitions(session, "j1")
            assert (job.state, job.attempt, job.max_attempts) == (JobState.CREATED, 1, 5)
            assert job.params == {"databases": ["orders"]}
            assert job.resource is not None and job.resource.name == "orders-db"
            assert job.rule is not None and job.rule.plan.name == "daily"
            assert [(t.from_state, t.to_state, t.attempt) for t in transitions] == [
                (None, JobState.CREATED, 1)
            ]

    def test_an_unknown_job_is_not_found(self, catalog: Catalog) -> None:
        with pytest.raises(NotFoundError), catalog.session() as session:
            catalog_jobs.get_job(session, "nope")

    def test_of_two_racing_transitions_from_one_state_exactly_one_wins(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="j1", resource_id=seeds.orders_db)

        with catalog.session() as session:
            catalog_jobs.transition_job(
                session,
                "j1",
                from_state=JobState.PENDING,
                to_state=JobState.ABORTED,
                at=later(1),
                reason="cancelled",
            )
        with pytest.raises(ConflictError, match="is ABORTED"), catalog.session() as session:
            catalog_jobs.transition_job(
                session,
                "j1",
                from_state=JobState.PENDING,
                to_state=JobState.RUNNING,
                at=later(2),
                reason="claimed",
            )

        with catalog.session(readonly=True) as session:
            transitions = catalog_jobs.list_transitions(session, "j1")
            assert catalog_jobs.get_job(session, "j1").state is JobState.ABORTED
        assert [t.to_state for t in transitions] == [
            JobState.CREATED,
            JobState.PENDING,
            JobState.ABORTED,
        ]

    def test_a_transition_whose_guard_fails_changes_nothing(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="j1", resource_id=seeds.orders_db)
            catalog_jobs.claim_next_job(
                session, owner="w1", now=later(0), lease_seconds=60, kinds=[JobKind.BACKUP]
            )

        for guard in (JobGuard(lease_owner="w2"), JobGuard(attempt=2)):
            with pytest.raises(ConflictError), catalog.session() as session:
                catalog_jobs.transition_job(
                    session,
                    "j1",
                    from_state=JobState.RUNNING,
                    to_state=JobState.COMPLETED,
                    at=later(5),
                    reason="done",
                    guard=guard,
                )
        with catalog.session() as session:
            job = catalog_jobs.transition_job(
                session,
                "j1",
                from_state=JobState.RUNNING,
                to_state=JobState.COMPLETED,
                at=later(5),
                reason="done",
                guard=JobGuard(attempt=1, lease_owner="w1"),
                changes={"result": {"bytes": 10}, "finished_at": later(5)},
            )
            assert (job.state, job.result, job.finished_at) == (
                JobState.COMPLETED,
                {"bytes": 10},
                later(5),
            )

    def test_only_real_columns_can_change_with_a_transition(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="j1")
        with pytest.raises(ValueError, match="not changeable"), catalog.session() as session:
            catalog_jobs.transition_job(
                session,
                "j1",
                from_state=JobState.PENDING,
                to_state=JobState.ABORTED,
                at=later(1),
                reason="x",
                changes={"stat": "oops"},
            )

    def test_a_cancel_request_reaches_the_lease_holder(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="j1", resource_id=seeds.orders_db)
            catalog_jobs.claim_next_job(
                session, owner="w1", now=later(0), lease_seconds=60, kinds=[JobKind.BACKUP]
            )
        with catalog.session() as session:
            catalog_jobs.request_cancel(session, "j1", at=later(1), reason="user asked")
        with catalog.session() as session:
            status = catalog_jobs.renew_lease(
                session, "j1", owner="w1", attempt=1, now=later(2), lease_seconds=60
            )
        assert (status.renewed, status.cancel_requested, status.cancel_reason) == (
            True,
            True,
            "user asked",
        )

    def test_jobs_list_newest_first_by_state_kind_resource_vault_and_time(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="a", resource_id=seeds.orders_db, vault_id=seeds.main)
            add_pending(
                session, job_id="b", resource_id=seeds.cache, vault_id=seeds.dr, at=later(10)
            )
            add_pending(
                session,
                job_id="c",
                kind=JobKind.RESTORE,
                resource_id=seeds.orders_db,
                vault_id=seeds.dr,
                at=later(20),
            )
            catalog_jobs.transition_job(
                session,
                "a",
                from_state=JobState.PENDING,
                to_state=JobState.ABORTED,
                at=later(30),
                reason="x",
            )

        def ids(**filters: object) -> list[str]:
            with catalog.session(readonly=True) as session:
                return [job.id for job in catalog_jobs.list_jobs(session, **filters)]  # type: ignore[arg-type]

        assert ids() == ["c", "b", "a"]
        assert ids(states=[JobState.PENDING]) == ["c", "b"]
        assert ids(kinds=[JobKind.BACKUP]) == ["b", "a"]
        assert ids(resource="orders-db") == ["c", "a"]
        assert ids(vault="dr") == ["c", "b"]
        assert ids(since=later(10)) == ["c", "b"]
        assert ids(since=later(10), until=later(20)) == ["b"]
        assert ids(limit=1) == ["c"]
        assert ids(resource="nobody") == []

    def test_jobs_whose_start_window_closed_are_found(self, catalog: Catalog, seeds: Seeds) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="late", start_by=later(60))
            add_pending(session, job_id="open", start_by=later(600))
            add_pending(session, job_id="never")
        with catalog.session(readonly=True) as session:
            missed = [job.id for job in catalog_jobs.list_missed_start(session, now=later(61))]
        assert missed == ["late"]

    def test_jobs_page_by_keyset_without_gaps_or_repeats(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            for number in range(7):  # pairs share a creation time: the id breaks the tie
                add_pending(
                    session,
                    job_id=f"job-{number}",
                    resource_id=seeds.orders_db,
                    at=later(number // 2),
                )
        with catalog.session(readonly=True) as session:
            everything = [job.id for job in catalog_jobs.list_jobs(session)]
            paged = ids_page_by_page(
                lambda after: catalog_jobs.list_jobs(session, limit=3, after=after)
            )
        assert len(everything) == 7
        assert paged == everything

"""Claims suite: what may run, concurrency limits, one backup per resource, leases."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.jobs import ConcurrencyLimits, JobGuard
from strongroom.catalog.models import Job
from strongroom.catalog.settings import read_concurrency_limits, write_concurrency_limits
from strongroom.catalog.types import JobKind, JobState
from strongroom.errors import ConflictError
from tests.support.catalog import CatalogFixtures, Seeds, add_pending, later

BACKUP = [JobKind.BACKUP]
ALL_KINDS = list(JobKind)


def claim(
    catalog: Catalog,
    owner: str = "w1",
    seconds: float = 0,
    *,
    kinds: list[JobKind] = ALL_KINDS,
    limits: ConcurrencyLimits | None = None,
    only: list[str] | None = None,
) -> str | None:
    with catalog.session() as session:
        job = catalog_jobs.claim_next_job(
            session,
            owner=owner,
            now=later(seconds),
            lease_seconds=60,
            kinds=kinds,
            limits=limits,
            only=only,
        )
        return None if job is None else job.id


def store_limits(catalog: Catalog, limits: ConcurrencyLimits) -> None:
    with catalog.session() as session:
        write_concurrency_limits(session, limits, at=later(0))


def finish(catalog: Catalog, job_id: str, owner: str, seconds: float = 1) -> None:
    with catalog.session() as session:
        catalog_jobs.transition_job(
            session,
            job_id,
            from_state=JobState.RUNNING,
            to_state=JobState.COMPLETED,
            at=later(seconds),
            reason="done",
            guard=JobGuard(lease_owner=owner),
            changes={"lease_owner": None, "lease_expires_at": None},
        )


class ClaimSuite(CatalogFixtures):
    def test_a_claim_takes_the_oldest_runnable_job_and_leases_it(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="second", resource_id=seeds.cache, at=later(5))
            add_pending(session, job_id="first", resource_id=seeds.orders_db, at=later(1))

        assert claim(catalog, "w1", 10) == "first"
        with catalog.session(readonly=True) as session:
            job = catalog_jobs.get_job(session, "first")
            transitions = catalog_jobs.list_transitions(session, "first")
            assert job.state is JobState.RUNNING
            assert (job.lease_owner, job.lease_expires_at, job.started_at) == (
                "w1",
                later(70),
                later(10),
            )
            assert (transitions[-1].from_state, transitions[-1].to_state) == (
                JobState.PENDING,
                JobState.RUNNING,
            )
            assert transitions[-1].reason == "claimed by w1"

    def test_only_jobs_of_the_given_kinds_whose_time_has_come_are_claimed(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="restore", kind=JobKind.RESTORE, resource_id=seeds.cache)
            add_pending(
                session, job_id="retry", resource_id=seeds.orders_db, next_attempt_at=later(300)
            )
            add_pending(session, job_id="too-late", resource_id=seeds.billing_db, start_by=later(5))

        assert claim(catalog, seconds=10, kinds=BACKUP) is None
        assert claim(catalog, seconds=10, kinds=[]) is None
        assert claim(catalog, seconds=300, kinds=BACKUP) == "retry"
        assert claim(catalog, seconds=300, kinds=[JobKind.RESTORE]) == "restore"

    def test_a_resource_never_has_two_backups_running(self, catalog: Catalog, seeds: Seeds) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="b1", resource_id=seeds.orders_db, at=later(1))
            add_pending(session, job_id="b2", resource_id=seeds.orders_db, at=later(2))
            add_pending(
                session, job_id="r1", kind=JobKind.RESTORE, resource_id=seeds.orders_db, at=later(3)
            )

        assert claim(catalog, "w1") == "b1"
        assert claim(catalog, "w2", kinds=BACKUP) is None
        assert claim(catalog, "w2") == "r1"  # a restore is not a backup
        finish(catalog, "b1", "w1")
        assert claim(catalog, "w2") == "b2"

    def test_the_database_itself_refuses_a_second_running_backup(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="b1", resource_id=seeds.orders_db)
            add_pending(session, job_id="b2", resource_id=seeds.orders_db)
        assert claim(catalog) == "b1"

        # Bypassing the claim (as a buggy or older worker might) hits the unique index.
        with pytest.raises(ConflictError, match="refused"), catalog.session() as session:
            catalog_jobs.transition_job(
                session,
                "b2",
                from_state=JobState.PENDING,
                to_state=JobState.RUNNING,
                at=later(1),
                reason="forced",
            )

    def test_the_global_limit_holds(self, catalog: Catalog, seeds: Seeds) -> None:
        with catalog.session() as session:
            for number, resource in enumerate([seeds.orders_db, seeds.billing_db, seeds.cache]):
                add_pending(session, job_id=f"j{number}", resource_id=resource, at=later(number))
        limits = ConcurrencyLimits(max_running=2)

        assert [claim(catalog, limits=limits) for _ in range(3)] == ["j0", "j1", None]

    def test_per_vault_and_per_resource_type_limits_hold(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="o-main", resource_id=seeds.orders_db, vault_id=seeds.main)
            add_pending(
                session,
                job_id="b-main",
                resource_id=seeds.billing_db,
                vault_id=seeds.main,
                at=later(1),
            )
            add_pending(
                session, job_id="b-dr", resource_id=seeds.billing_db, vault_id=seeds.dr, at=later(2)
            )
            add_pending(
                session, job_id="c-main", resource_id=seeds.cache, vault_id=seeds.main, at=later(3)
            )
        per_vault = ConcurrencyLimits(per_vault={"main": 1})
        per_type = ConcurrencyLimits(per_resource_type={"postgres": 1}, per_vault_default=5)

        assert claim(catalog, limits=per_vault) == "o-main"
        assert claim(catalog, limits=per_vault) == "b-dr"  # main is full; dr is not
        assert claim(catalog, limits=per_vault) is None
        assert claim(catalog, limits=per_type) == "c-main"  # postgres is full; redis is not

    def test_a_claim_without_limits_follows_the_limits_stored_in_the_catalog(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            for number, resource in enumerate([seeds.orders_db, seeds.billing_db, seeds.cache]):
                add_pending(session, job_id=f"j{number}", resource_id=resource, at=later(number))
        store_limits(catalog, ConcurrencyLimits(max_running=1))

        assert claim(catalog) == "j0"
        assert claim(catalog) is None  # the stored global limit of 1 is full
        finish(catalog, "j0", "w1")
        store_limits(catalog, ConcurrencyLimits(per_resource_type={"postgres": 1}))
        # read afresh at every claim: the new limits hold without a new executor
        assert claim(catalog) == "j1"
        assert claim(catalog) == "j2"  # redis is not limited
        with catalog.session(readonly=True) as session:
            assert read_concurrency_limits(session) == ConcurrencyLimits(
                per_resource_type={"postgres": 1}
            )

    def test_limits_given_to_a_claim_replace_the_stored_ones(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="j0", resource_id=seeds.orders_db)
            add_pending(session, job_id="j1", resource_id=seeds.cache, at=later(1))
        store_limits(catalog, ConcurrencyLimits(max_running=1))

        assert claim(catalog, limits=ConcurrencyLimits()) == "j0"
        assert claim(catalog, limits=ConcurrencyLimits()) == "j1"

    def test_a_claim_with_only_takes_just_those_jobs_within_the_limits(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="older", resource_id=seeds.orders_db)
            add_pending(session, job_id="mine", resource_id=seeds.cache, at=later(1))
            add_pending(session, job_id="other", resource_id=seeds.billing_db, at=later(2))
        global_one = ConcurrencyLimits(max_running=1)

        assert claim(catalog, only=[]) is None
        assert claim(catalog, only=["mine", "missing"], limits=global_one) == "mine"
        assert claim(catalog, only=["other"], limits=global_one) is None  # the limit is full
        assert claim(catalog, only=["mine"]) is None  # running already
        with catalog.session(readonly=True) as session:
            assert catalog_jobs.get_job(session, "older").state is JobState.PENDING
        assert claim(catalog) == "older"

    def test_limits_below_one_are_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            ConcurrencyLimits(per_vault={"main": 0})

    def test_an_expired_lease_is_found_and_a_renewed_one_is_not(
        self, catalog: Catalog, seeds: Seeds
    ) -> None:
        with catalog.session() as session:
            add_pending(session, job_id="alive", resource_id=seeds.orders_db)
            add_pending(session, job_id="dead", resource_id=seeds.cache, at=later(1))
        claim(catalog, "alive-worker")
        claim(catalog, "dead-worker")

        with catalog.session() as session:
            status = catalog_jobs.renew_lease(
                session,
                "alive",
                owner="alive-worker",
                attempt=1,
                now=later(50),
                lease_seconds=60,
                progress={"done": 5},
            )
            stolen = catalog_jobs.renew_lease(
                session, "dead", owner="thief", attempt=1, now=later(50), lease_seconds=60
            )
        with catalog.session(readonly=True) as session:
            expired_early = catalog_jobs.list_expired_leases(session, now=later(59))
            expired = [job.id for job in catalog_jobs.list_expired_leases(session, now=later(61))]
            progress = catalog_jobs.get_job(session, "alive").progress

        assert status.renewed and not stolen.renewed
        assert expired_early == []
        assert expired == ["dead"]
        assert progress == {"done": 5}

    @pytest.mark.parametrize("catalogs", [1, 2], ids=["one-catalog", "two-catalogs"])
    def test_concurrent_claimers_run_each_job_once_and_one_backup_per_resource(
        self, catalog: Catalog, seeds: Seeds, catalog_url: str, tmp_path: Path, catalogs: int
    ) -> None:
        resources = [seeds.orders_db, seeds.billing_db, seeds.cache]
        with catalog.session() as session:
            for number in range(18):
                add_pending(
                    session,
                    job_id=f"j{number:02}",
                    resource_id=resources[number % 3],
                    at=later(number),
                )
        handles = [catalog] + [open_catalog(catalog_url, tmp_path) for _ in range(catalogs - 1)]
        lock = threading.Lock()
        running: Counter[int] = Counter()
        violations: list[str] = []
        ran: list[str] = []

        def worker(number: int) -> None:
            handle = handles[number % len(handles)]
            owner = f"w{number}"
            while True:
                with handle.session() as session:
                    job = catalog_jobs.claim_next_job(
                        session, owner=owner, now=later(100), lease_seconds=60, kinds=BACKUP
                    )
                    if job is None:
                        remaining = session.scalar(
                            select(func.count())
                            .select_from(Job)
                            .where(Job.state.in_([JobState.PENDING, JobState.RUNNING]))
                        )
                        if not remaining:
                            return
                        job_id, resource = None, None
                    else:
                        job_id, resource = job.id, job.resource_id
                if job_id is None or resource is None:
                    time.sleep(0.005)
                    continue
                with lock:
                    running[resource] += 1
                    if running[resource] > 1:
                        violations.append(f"{job_id}: two backups of resource {resource}")
                    ran.append(job_id)
                time.sleep(0.01)
                with lock:  # before the commit that frees the resource for others
                    running[resource] -= 1
                finish(handle, job_id, owner, 101)

        try:
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(worker, range(6)))
        finally:
            for extra in handles[1:]:
                extra.close()

        assert violations == []
        assert sorted(ran) == [f"j{number:02}" for number in range(18)]

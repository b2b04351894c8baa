"""Two schedulers on one catalog never fire an instant twice, on SQLite and PostgreSQL;
the leadership lease lets one daemon schedule and tells the other why it may not."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from psycopg import sql

from strongroom.catalog import Catalog, open_catalog
from strongroom.engine.clock import ManualClock
from strongroom.engine.events import EventBus
from strongroom.engine.leader import Leadership
from strongroom.engine.scheduler import Scheduler
from strongroom.engine.states import JobStateMachine
from tests.support.catalog import T0
from tests.support.scheduling import (
    SEED_RULES,
    run_jobs,
    runs,
    seed_plan,
    seed_resources,
)
from tests.support.services import PostgresService, unique_name
from tests.support.waiting import PATIENCE

HOURLY = {"name": "hourly", "schedule": "cron(0 * * * ? *)", "start_window_minutes": 600}


def race_two_schedulers(url: str, home: Path, clock: ManualClock) -> Catalog:
    """Seed a catalog at ``url``, then let two schedulers (each with its own connection
    pool, as two processes have) tick at the same moments for two simulated days."""
    first = open_catalog(url, home)
    seed_resources(first)
    seed_plan(first, [*SEED_RULES, HOURLY])
    second = open_catalog(url, home)
    schedulers = [
        Scheduler(JobStateMachine(catalog, EventBus(catalog, clock), clock))
        for catalog in (first, second)
    ]
    barrier = threading.Barrier(3)
    errors: list[Exception] = []
    steps = 2 * 24 * 4

    def worker(scheduler: Scheduler) -> None:
        try:
            for _ in range(steps):
                barrier.wait(PATIENCE)
                scheduler.tick()
                barrier.wait(PATIENCE)
        except Exception as error:  # noqa: BLE001 (the main thread asserts there is none)
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    try:
        for _ in range(steps):
            clock.advance(timedelta(minutes=15))
            barrier.wait(PATIENCE)  # both tick now
            barrier.wait(PATIENCE)  # both done
    finally:
        for thread in threads:
            thread.join(PATIENCE)
        second.close()
    assert errors == []
    return first


def assert_fired_once(catalog: Catalog) -> None:
    fired = Counter((run.rule, run.fired_at) for run in runs(catalog))
    assert fired, "nothing fired"
    assert max(fired.values()) == 1, [key for key, count in fired.items() if count > 1]
    assert Counter(rule for rule, _ in fired)["hourly"] == 48
    for run in runs(catalog):
        jobs = run_jobs(catalog, run.id)
        # no duplicate job per resource from the other scheduler either
        assert len({job.resource for job in jobs}) == len(jobs)


def test_two_schedulers_on_one_sqlite_catalog_never_double_fire(
    tmp_path: Path, clock: ManualClock
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    catalog = race_two_schedulers(url, tmp_path, clock)
    try:
        assert_fired_once(catalog)
    finally:
        catalog.close()


@pytest.fixture
def postgres_url(postgres_service: PostgresService) -> Iterator[str]:
    name = unique_name("sr_scheduler")
    with postgres_service.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield postgres_service.url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with postgres_service.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.mark.integration
def test_two_schedulers_on_one_postgresql_catalog_never_double_fire(
    postgres_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    catalog = race_two_schedulers(postgres_url, tmp_path, clock)
    try:
        assert_fired_once(catalog)
    finally:
        catalog.close()


def test_one_holder_at_a_time_until_the_lease_expires_or_is_released(
    catalog: Catalog, clock: ManualClock
) -> None:
    first = Leadership(catalog, clock, holder="first", lease_seconds=60)
    second = Leadership(catalog, clock, holder="second", lease_seconds=60)

    assert first.acquire()
    assert not second.acquire()
    assert "first holds the scheduler lease" in second.describe_other()
    clock.advance(45)
    assert first.acquire()  # renewed: good for another 60 s from now
    clock.advance(45)
    assert not second.acquire()
    assert first.current is not None and first.current.acquired_at == T0
    clock.advance(61)  # first stopped renewing
    assert second.acquire()
    assert not first.acquire() and not first.held
    assert second.release()
    assert first.acquire()  # a released lease is free at once
    assert first.current is not None and first.current.acquired_at == clock.now()


def winners(url: str, home: Path, clock: ManualClock, contenders: int = 6) -> list[str]:
    """Let ``contenders`` daemons (each with its own pool) take the lease at once."""
    catalogs = [open_catalog(url, home) for _ in range(contenders)]
    barrier = threading.Barrier(contenders)
    won: list[str] = []

    def contend(index: int) -> None:
        leadership = Leadership(catalogs[index], clock, holder=f"d{index}")
        barrier.wait(PATIENCE)
        if leadership.acquire():
            won.append(leadership.holder)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PATIENCE)
    finally:
        for catalog in catalogs:
            catalog.close()
    return won


def test_leadership_is_exclusive_when_many_try_at_once(tmp_path: Path, clock: ManualClock) -> None:
    assert len(winners(f"sqlite:///{tmp_path / 'lease.db'}", tmp_path, clock)) == 1


@pytest.mark.integration
def test_leadership_is_exclusive_on_postgresql(
    postgres_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    assert len(winners(postgres_url, tmp_path, clock)) == 1

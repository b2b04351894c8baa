"""What every catalog test shares: the fixtures base class, a fixed time, seed rows.

The catalog suites (``suite_*.py``) run on SQLite in ``tests/unit/catalog/test_sqlite_catalog.py`` and on
the real PostgreSQL in ``tests/integration/test_catalog_postgres.py``. A subclass gives
two fixtures: ``catalog_url`` (one database for the test; it may be shared by the tests
of a module, so the ``catalog`` fixture empties every table afterwards) and
``new_catalog_url`` (a factory of brand-new empty databases).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog import Catalog, open_catalog, resources
from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.models import Base, Job, JobTransition
from strongroom.catalog.types import JobKind, JobState

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

NewCatalogUrl = Callable[[], str]


def later(seconds: float) -> datetime:
    """Return T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


class CatalogFixtures:
    """Base of every catalog suite; subclasses define ``catalog_url`` and ``new_catalog_url``."""

    @pytest.fixture
    def catalog(self, catalog_url: str, tmp_path: Path) -> Iterator[Catalog]:
        catalog = open_catalog(catalog_url, tmp_path)
        try:
            yield catalog
        finally:
            wipe(catalog)
            catalog.close()

    @pytest.fixture
    def seeds(self, catalog: Catalog) -> Seeds:
        return seed(catalog)


def wipe(catalog: Catalog) -> None:
    """Delete every row of every table (children first)."""
    with catalog.session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


@dataclass(frozen=True)
class Seeds:
    """Ids of the rows :func:`seed` creates."""

    orders_db: int
    billing_db: int
    cache: int
    main: int
    dr: int
    rule: int


def seed(catalog: Catalog) -> Seeds:
    """Create two postgres resources, a redis one, vaults main and dr, plan daily/nightly."""
    with catalog.session() as session:
        orders = resources.upsert_resource(
            session, name="orders-db", type="postgres", at=T0, tags={"tier": "gold"}
        )
        billing = resources.upsert_resource(session, name="billing-db", type="postgres", at=T0)
        cache = resources.upsert_resource(session, name="cache", type="redis", at=T0)
        main = resources.upsert_vault(session, name="main", url="file:///tmp/main", at=T0)
        dr = resources.upsert_vault(session, name="dr", url="file:///tmp/dr", at=T0)
        plan = resources.upsert_plan(session, name="daily", at=T0)
        rule = resources.upsert_rule(session, plan=plan, name="nightly", vault=main, at=T0)
        return Seeds(orders.id, billing.id, cache.id, main.id, dr.id, rule.id)


def add_pending(
    session: Session,
    *,
    job_id: str,
    kind: JobKind = JobKind.BACKUP,
    resource_id: int | None = None,
    vault_id: int | None = None,
    at: datetime = T0,
    next_attempt_at: datetime | None = None,
    **fields: object,
) -> Job:
    """Insert a job and move it CREATED -> PENDING, as the engine does."""
    catalog_jobs.create_job(
        session,
        job_id=job_id,
        kind=kind,
        at=at,
        max_attempts=3,
        retry_interval_seconds=300.0,
        retry_backoff_rate=2.0,
        resource_id=resource_id,
        vault_id=vault_id,
        **fields,  # type: ignore[arg-type]
    )
    return catalog_jobs.transition_job(
        session,
        job_id,
        from_state=JobState.CREATED,
        to_state=JobState.PENDING,
        at=at,
        reason="queued",
        changes={"next_attempt_at": next_attempt_at},
    )


def most_running_at_once(catalog: Catalog, job_ids: Collection[str] | None = None) -> int:
    """Replay the recorded transitions (of ``job_ids``, or all) in commit order; return the
    most of those jobs RUNNING at once.

    Transition ids grow in the order the claims and ends were written (a claim reads the
    running jobs under the claim lock, after the end it waited for committed), so this
    does not depend on clock readings taken before a transaction got its lock.
    """
    running = peak = 0
    with catalog.session(readonly=True) as session:
        statement = select(JobTransition).order_by(JobTransition.id)
        if job_ids is not None:
            statement = statement.where(JobTransition.job_id.in_(list(job_ids)))
        for transition in session.scalars(statement):
            if transition.to_state is JobState.RUNNING:
                running += 1
            elif transition.from_state is JobState.RUNNING:
                running -= 1
            peak = max(peak, running)
    return peak


def ids_page_by_page(fetch: Callable[[tuple[datetime, str] | None], list[Any]]) -> list[str]:
    """The ids of every row ``fetch`` lists in pages of 3, each page asked for ``after``
    the last row of the previous one (keyset paging): in the order the pages gave them."""
    ids: list[str] = []
    after = None
    while True:
        page = fetch(after)
        ids += [row.id for row in page]
        if len(page) < 3:
            return ids
        after = (page[-1].created_at, page[-1].id)

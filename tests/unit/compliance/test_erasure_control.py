"""The GDPR erasure control over a real SQLite catalog: requests listed, restores checked."""

from __future__ import annotations

from datetime import timedelta

from strongroom.catalog import Catalog
from strongroom.catalog import erasure as catalog_erasure
from strongroom.catalog import resources as catalog_resources
from strongroom.catalog.jobs import create_job
from strongroom.catalog.models import ErasureRequest
from strongroom.catalog.types import JobKind, JobState
from strongroom.compliance.model import Status
from tests.unit.compliance.test_controls import START, catalog, controls, seed

__all__ = ["catalog"]  # the fixture, used by name


def _request(catalog: Catalog, request_id: str, *, days: int, cancelled: bool = False) -> None:
    with catalog.session() as session:
        catalog_erasure.add_request(
            session,
            ErasureRequest(
                id=request_id,
                resource="orders-db",
                subject="subject-42",
                kind="sql",
                method={"statements": ["DELETE FROM users WHERE id = %(subject)s"]},
                reason="ticket",
                requested_by="ana@desk",
                requested_at=START + timedelta(days=days),
                due_at=START + timedelta(days=days + 30),
                state=catalog_erasure.OPEN,
            ),
        )
        if cancelled:
            catalog_erasure.cancel_request(
                session, request_id, by="ana@desk", at=START + timedelta(days=days + 1), reason="no"
            )


def _restore(catalog: Catalog, job_id: str, *, days: int, evidence_for: str | None) -> None:
    at = START + timedelta(days=days)
    with catalog.session() as session:
        resource = catalog_resources.get_resource(session, "orders-db")
        job = create_job(
            session,
            job_id=job_id,
            kind=JobKind.RESTORE,
            at=at,
            max_attempts=1,
            retry_interval_seconds=1,
            retry_backoff_rate=1,
            resource_id=resource.id,
        )
        job.state, job.started_at, job.finished_at = JobState.COMPLETED, at, at
        if evidence_for is not None:
            catalog_erasure.record_application(
                session,
                request_id=evidence_for,
                job_id=job_id,
                point_id="p0302",
                restore_test=False,
                at=at,
                effect={"target": "postgresql://db/copy", "affected": 3, "remaining": 0},
            )


def test_no_erasure_request_is_not_applicable(catalog: Catalog) -> None:
    seed(catalog)
    assert controls(catalog, "gdpr")["erasure-requests"].status is Status.NOT_APPLICABLE


def test_requests_are_listed_with_their_reapplications(catalog: Catalog) -> None:
    seed(catalog)
    _request(catalog, "req-open", days=2)
    _request(catalog, "req-gone", days=3, cancelled=True)
    _restore(catalog, "job-r1", days=5, evidence_for="req-open")
    found = controls(catalog, "gdpr")["erasure-requests"]
    assert found.status is Status.PASS
    assert found.summary == "1 open erasure request(s), 1 re-applied by restores"
    notes = {item.ref: item.note for item in found.evidence if item.kind == "erasure"}
    assert notes["req-open"].startswith("orders-db: open, requested 2030-03-03 by ana@desk")
    assert notes["req-open"].endswith("re-applied 1 time(s)")
    assert notes["req-gone"].startswith("orders-db: cancelled 2030-03-05")
    assert "subject-42" not in str(found.as_json())  # the subject's id stays in the catalog


def test_a_restore_without_reapplication_fails_naming_the_job(catalog: Catalog) -> None:
    seed(catalog)
    _request(catalog, "req-open", days=2)
    _restore(catalog, "job-before", days=1, evidence_for=None)  # before the request: fine
    _restore(catalog, "job-after", days=6, evidence_for=None)
    found = controls(catalog, "gdpr")["erasure-requests"]
    assert found.status is Status.FAIL
    assert found.findings == (
        "restore job job-after of orders-db completed without re-applying erasure request req-open",
    )

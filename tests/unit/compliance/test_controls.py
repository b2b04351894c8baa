"""Controls evaluated over a real SQLite catalog seeded with a month of evidence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog import points as catalog_points
from strongroom.catalog import resources as catalog_resources
from strongroom.catalog.audit import NewEntry, append_entry
from strongroom.catalog.models import AuditEntry
from strongroom.compliance.evidence import gather
from strongroom.compliance.frameworks import BUILT_IN, evaluate, load_framework, resolve
from strongroom.compliance.model import ControlResult, Period, Status
from strongroom.errors import ConfigError

START = datetime(2030, 3, 1, tzinfo=UTC)
END = START + timedelta(days=30)
MISSED = START + timedelta(days=12)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path)
    try:
        yield catalog
    finally:
        catalog.close()


def seed(catalog: Catalog, *, failed_test: bool = False, skip: datetime | None = MISSED) -> None:
    """One resource, one vault, a rule keeping 35 days, a backup every day but ``skip``,
    each verified an hour later; a restore test 3 days before the end."""
    before = START - timedelta(days=2)
    with catalog.session() as session:
        resource = catalog_resources.upsert_resource(
            session, name="orders-db", type="postgres", at=before
        )
        vault = catalog_resources.upsert_vault(
            session,
            name="main",
            url="file:///srv/main",
            at=before,
            settings={"key": {"provider": "key-file", "path": "/k"}},
        )
        plan = catalog_resources.upsert_plan(session, name="prod", at=before)
        catalog_resources.upsert_rule(
            session,
            plan=plan,
            name="daily",
            vault=vault,
            at=before,
            lifecycle={"delete_after_days": 35},
        )
        day = START
        while day < END:
            if day != skip:
                at = day + timedelta(hours=3)
                point_id = f"p{day:%m%d}"
                catalog_points.record_recovery_point(
                    session,
                    point_id=point_id,
                    vault_id=vault.id,
                    resource_id=resource.id,
                    created_at=at,
                    completed_at=at,
                )
                catalog_points.record_verification(
                    session, point_id, result={"ok": True}, at=at + timedelta(hours=1)
                )
            day += timedelta(days=1)
        catalog_points.record_restore_test(
            session,
            f"p{END - timedelta(days=4):%m%d}",
            result={"ok": not failed_test, "job_id": "job-restore-1"},
            at=END - timedelta(days=3),
        )
        append_entry(
            session,
            NewEntry(
                at=START + timedelta(days=1),
                actor="ana@desk",
                origin="cli on desk pid 1",
                action="config.apply",
                subject="strongroom.yaml",
                outcome="succeeded",
            ),
        )


def controls(catalog: Catalog, framework: str = "soc2") -> dict[str, ControlResult]:
    with catalog.session(readonly=True) as session:
        data = gather(session, Period(START, END))
    result = evaluate(BUILT_IN[framework], data)
    return {
        control.control: control
        for requirement in result.requirements
        for control in requirement.controls
    }


def test_a_missed_day_fails_coverage_naming_the_day(catalog: Catalog) -> None:
    seed(catalog)
    coverage = controls(catalog)["backup-coverage-daily"]
    assert coverage.status is Status.FAIL
    assert coverage.findings == ("orders-db: no completed backup on 2030-03-13",)
    assert coverage.summary == "29 of 30 resource-days covered"


def test_every_day_covered_passes_with_the_points_as_evidence(catalog: Catalog) -> None:
    seed(catalog, skip=None)
    coverage = controls(catalog)["backup-coverage-daily"]
    assert coverage.status is Status.PASS
    assert len([item for item in coverage.evidence if item.kind == "point"]) == 30


def test_a_failed_restore_test_fails_naming_its_job(catalog: Catalog) -> None:
    seed(catalog, failed_test=True)
    tested = controls(catalog, "pci-dss")["restore-test-recent"]
    assert tested.status is Status.FAIL
    assert tested.findings == (
        "orders-db: the restore test of point p0327 on 2030-03-28 failed (job job-restore-1)",
    )
    assert controls(catalog)["restore-test-recent"].status is Status.FAIL


def test_a_passing_restore_test_passes(catalog: Catalog) -> None:
    seed(catalog)
    assert controls(catalog)["restore-test-recent"].status is Status.PASS


def test_an_empty_catalog_is_no_evidence_never_pass(catalog: Catalog) -> None:
    found = controls(catalog)
    assert {control.status for control in found.values()} == {Status.NO_EVIDENCE}
    with catalog.session(readonly=True) as session:
        data = gather(session, Period(START, END))
    assert evaluate(BUILT_IN["soc2"], data).status is Status.NO_EVIDENCE


def test_retention_maximum_fails_a_rule_that_keeps_too_long(catalog: Catalog) -> None:
    seed(catalog)
    found = controls(catalog, "gdpr")["retention-maximum"]
    assert found.status is Status.PASS  # 35 days <= 365
    framework = BUILT_IN["gdpr"].model_copy(deep=True)
    framework.requirements[0].controls[0].params["days"] = 30
    with catalog.session(readonly=True) as session:
        data = gather(session, Period(START, END))
    result = evaluate(framework, data)
    retention = result.requirements[0].controls[0]
    assert retention.status is Status.FAIL
    assert retention.findings[0] == "rule prod/daily keeps points 35 days (> 30)"


def test_verification_and_retention_minimum_pass_on_good_evidence(catalog: Catalog) -> None:
    seed(catalog)
    found = controls(catalog)
    assert found["verification-within"].status is Status.PASS
    assert found["retention-minimum"].status is Status.PASS
    assert found["encryption-at-rest"].status is Status.PASS
    assert found["dr-copies"].status is Status.NO_EVIDENCE


def test_a_deleted_audit_entry_fails_the_audit_control(catalog: Catalog) -> None:
    seed(catalog)
    with catalog.session() as session:
        for number in range(2, 4):
            append_entry(
                session,
                NewEntry(
                    at=START + timedelta(days=number),
                    actor="ana@desk",
                    origin="cli",
                    action="backup.start",
                    subject=f"job-{number}",
                    outcome="succeeded",
                ),
            )
    assert controls(catalog)["audit-trail-intact"].status is Status.PASS
    with catalog.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    audit = controls(catalog)["audit-trail-intact"]
    assert audit.status is Status.FAIL
    assert audit.findings == ("entry 2 is missing: it was deleted",)


def test_a_custom_framework_file_is_evaluated(catalog: Catalog, tmp_path: Path) -> None:
    seed(catalog)
    path = tmp_path / "acme.yaml"
    path.write_text(
        "name: acme\ntitle: ACME policy\nrequirements:\n"
        "  - id: keep\n    text: Keep a week\n    controls:\n"
        "      - control: retention-minimum\n        params: {days: 7}\n",
        encoding="utf-8",
    )
    [framework] = resolve([str(path)])
    with catalog.session(readonly=True) as session:
        result = evaluate(framework, gather(session, Period(START, END)))
    assert result.status is Status.PASS
    assert result.as_json()["requirements"][0]["controls"][0]["params"] == {"days": 7}


def test_unknown_frameworks_controls_and_parameters_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown compliance framework 'iso27001'"):
        resolve(["iso27001"])
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ntitle: Bad\nrequirements:\n  - id: r\n    text: t\n    controls:\n"
        "      - control: backups-daily\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="unknown control 'backups-daily'"):
        load_framework(path)
    path.write_text(
        "name: bad\ntitle: Bad\nrequirements:\n  - id: r\n    text: t\n    controls:\n"
        "      - control: retention-minimum\n        params: {weeks: 3}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="has no parameter 'weeks'"):
        load_framework(path)
    path.write_text("name: bad\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"at 'title': Field required"):
        load_framework(path)


def test_the_days_of_a_period_are_whole_utc_days() -> None:
    period = Period(START + timedelta(hours=5), START + timedelta(days=3, hours=1))
    assert [day.isoformat() for day in period.days()] == ["2030-03-02", "2030-03-03"]


def test_a_point_verified_only_late_fails_naming_it(catalog: Catalog) -> None:
    seed(catalog, skip=None)
    with catalog.session() as session:
        catalog_points.record_verification(
            session, "p0305", result={"ok": True}, at=START + timedelta(days=7)
        )
    verification = controls(catalog)["verification-within"]
    assert verification.status is Status.FAIL
    assert verification.findings == (
        "point p0305 (orders-db, 2030-03-05 03:00) was not verified within 24 hours",
    )

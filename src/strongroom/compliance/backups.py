"""Controls over the backups themselves: coverage per day, retention, verification,
restore tests, failed jobs, DR copies."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from strongroom.catalog.types import JobKind, JobState, PointState
from strongroom.compliance.evidence import Catalogued
from strongroom.compliance.model import ControlResult, Evidence, Status, result

_KEPT = frozenset(
    {PointState.AVAILABLE, PointState.PARTIAL, PointState.EXPIRED, PointState.DELETED}
)
_ENDED_BADLY = frozenset({JobState.FAILED, JobState.ABORTED, JobState.EXPIRED})


def backup_coverage_daily(data: Catalogued, params: dict[str, Any]) -> ControlResult:
    """Every resource has a completed recovery point on every whole UTC day of the period
    (from the day after it was declared); a missed day is a finding naming the day."""
    title = "A completed backup of every resource on every day"
    days = data.period.days()
    resources = [r for r in data.protected if r.type not in params.get("exclude_types", [])]
    if not resources or not days:
        return result(
            "backup-coverage-daily",
            title,
            Status.NO_EVIDENCE,
            "no resources declared" if not resources else "the period holds no whole day",
            params=params,
        )
    made: dict[int, dict[date, list[str]]] = defaultdict(lambda: defaultdict(list))
    for point in data.points:
        if point.state in _KEPT and point.completed_at is not None:
            made[point.resource_id][point.created_at.astimezone(UTC).date()].append(point.id)
    findings: list[str] = []
    evidence: list[Evidence] = []
    expected = 0
    for resource in resources:
        first = resource.created_at.astimezone(UTC).date() + timedelta(days=1)
        for day in days:
            if day < first:
                continue
            expected += 1
            points = made[resource.id].get(day)
            if points:
                evidence.append(Evidence("point", points[-1], f"{resource.name} {day}"))
            else:
                findings.append(f"{resource.name}: no completed backup on {day.isoformat()}")
                evidence.append(Evidence("day", day.isoformat(), f"{resource.name}: missed"))
    if expected == 0:
        return result(
            "backup-coverage-daily",
            title,
            Status.NO_EVIDENCE,
            "every resource was declared during the period's last day",
            params=params,
        )
    covered = expected - len(findings)
    return result(
        "backup-coverage-daily",
        title,
        Status.FAIL if findings else Status.PASS,
        f"{covered} of {expected} resource-days covered",
        findings,
        evidence,
        params,
    )


def _rule_retentions(data: Catalogued) -> list[tuple[str, int | None]]:
    return [(name, rule.lifecycle.get("delete_after_days")) for name, rule in data.rules]


def retention_minimum(data: Catalogued, params: dict[str, Any]) -> ControlResult:
    """Every rule keeps its points at least ``days`` days (no deletion counts as kept)."""
    days = int(params.get("days", 30))
    title = f"Recovery points kept at least {days} days"
    rules = _rule_retentions(data)
    if not rules:
        return result(
            "retention-minimum", title, Status.NO_EVIDENCE, "no rules declared", params=params
        )
    findings = [
        f"rule {name} deletes points after {kept} days (< {days})"
        for name, kept in rules
        if kept is not None and kept < days
    ]
    evidence = [
        Evidence("rule", name, f"delete after {kept or 'never'} days") for name, kept in rules
    ]
    return result(
        "retention-minimum",
        title,
        Status.FAIL if findings else Status.PASS,
        f"{len(rules) - len(findings)} of {len(rules)} rules keep points {days}+ days",
        findings,
        evidence,
        params,
    )


def retention_maximum(data: Catalogued, params: dict[str, Any]) -> ControlResult:
    """Every rule deletes its points within ``days`` days (storage limitation): a rule
    that never deletes fails, and so does an expired point still kept past it."""
    days = int(params.get("days", 365))
    title = f"Recovery points deleted within {days} days"
    rules = _rule_retentions(data)
    if not rules:
        return result(
            "retention-maximum", title, Status.NO_EVIDENCE, "no rules declared", params=params
        )
    findings = [
        f"rule {name} "
        + ("never deletes points" if kept is None else f"keeps points {kept} days")
        + f" (> {days})"
        for name, kept in rules
        if kept is None or kept > days
    ]
    limit = data.period.end - timedelta(days=days)
    for point in data.points:
        if point.state in (PointState.AVAILABLE, PointState.PARTIAL) and point.created_at < limit:
            reason = " (legal hold)" if point.legal_hold else ""
            if not point.legal_hold:
                findings.append(
                    f"point {point.id} of {data.resource_name(point.resource_id)} is older than "
                    f"{days} days{reason}"
                )
    evidence = [
        Evidence("rule", name, f"delete after {kept or 'never'} days") for name, kept in rules
    ]
    return result(
        "retention-maximum",
        title,
        Status.FAIL if findings else Status.PASS,
        f"{len(findings)} finding(s) over {len(rules)} rules",
        findings,
        evidence,
        params,
    )


def verification_within(data: Catalogued, params: dict[str, Any]) -> ControlResult:
    """Every point made in the period was verified, successfully, within ``hours`` hours
    (a point younger than that at the period's end is not due yet)."""
    hours = float(params.get("hours", 24))
    title = f"Every backup verified within {hours:g} hours"
    window = timedelta(hours=hours)
    due = [
        point
        for point in data.points
        if point.created_at >= data.period.start
        and point.created_at + window <= data.period.end
        and point.state is not PointState.DELETED
    ]
    if not due:
        return result(
            "verification-within",
            title,
            Status.NO_EVIDENCE,
            "no backup in the period",
            params=params,
        )
    verifies = [
        job
        for job in data.jobs
        if job.kind is JobKind.VERIFY and job.state is JobState.COMPLETED and job.finished_at
    ]
    findings: list[str] = []
    evidence: list[Evidence] = []
    for point in due:
        name = data.resource_name(point.resource_id)
        deadline = point.created_at + window
        latest = point.verification_result or {}
        # A point keeps only its latest verification; the verify jobs keep every one.
        covering = [
            job
            for job in verifies
            if point.created_at <= job.finished_at <= deadline  # type: ignore[operator]
            and (job.params.get("point_id") or None) in (None, point.id)
            and (job.params.get("point_id") or job.vault_id == point.vault_id)
        ]
        if latest.get("ok") is False:
            findings.append(
                f"point {point.id} ({name}) failed its verification on {point.verified_at:%Y-%m-%d}"
            )
        elif covering:
            evidence.append(Evidence("job", covering[0].id, f"verified point {point.id} ({name})"))
            continue
        elif point.verified_at is not None and point.verified_at <= deadline:
            evidence.append(
                Evidence("point", point.id, f"verified {point.verified_at:%Y-%m-%d %H:%M}")
            )
            continue
        elif point.verified_at is None:
            findings.append(
                f"point {point.id} ({name}, {point.created_at:%Y-%m-%d}) was never verified"
            )
        else:
            findings.append(
                f"point {point.id} ({name}, {point.created_at:%Y-%m-%d %H:%M}) was not verified "
                f"within {hours:g} hours"
            )
        evidence.append(Evidence("point", point.id, "not verified in time"))
    return result(
        "verification-within",
        title,
        Status.FAIL if findings else Status.PASS,
        f"{len(due) - len(findings)} of {len(due)} backups verified in time",
        findings,
        evidence,
        params,
    )


def restore_test_recent(data: Catalogued, params: dict[str, Any]) -> ControlResult:
    """Every resource had a passing restore test within ``days`` days of the period's end;
    a failed test not followed by a passing one is a finding naming the test's job."""
    days = int(params.get("days", 92))
    title = f"Every resource restore-tested within {days} days"
    since = data.period.end - timedelta(days=days)
    if not data.protected:
        return result(
            "restore-test-recent",
            title,
            Status.NO_EVIDENCE,
            "no resource to protect",
            params=params,
        )
    tests: dict[int, list[tuple[datetime, bool, str, str]]] = defaultdict(list)
    for point in data.points:
        at = point.restore_tested_at
        if at is not None and since <= at < data.period.end and point.restore_test_result:
            test = point.restore_test_result
            tests[point.resource_id].append(
                (at, bool(test.get("ok")), point.id, str(test.get("job_id", "")))
            )
    findings: list[str] = []
    evidence: list[Evidence] = []
    for resource in data.protected:
        history = sorted(tests.get(resource.id, []))
        for at, ok, point_id, job_id in history:
            evidence.append(
                Evidence(
                    "restore-test",
                    job_id or point_id,
                    f"{resource.name} point {point_id} {at:%Y-%m-%d}: {'passed' if ok else 'FAILED'}",
                )
            )
        if not history:
            findings.append(f"{resource.name}: no restore test since {since:%Y-%m-%d}")
        elif not history[-1][1]:
            at, _, point_id, job_id = history[-1]
            findings.append(
                f"{resource.name}: the restore test of point {point_id} on {at:%Y-%m-%d} "
                f"failed (job {job_id})"
            )
    return result(
        "restore-test-recent",
        title,
        Status.FAIL if findings else Status.PASS,
        f"{len(data.protected) - len(findings)} of {len(data.protected)} resources restore-tested",
        findings,
        evidence,
        params,
    )


def failed_jobs_resolved(data: Catalogued, params: dict[str, Any]) -> ControlResult:
    """Every backup job of the period that failed, was aborted or expired was followed by
    a completed backup of the same resource."""
    title = "Failed backups followed by a successful one"
    backups = [job for job in data.jobs if job.kind is JobKind.BACKUP]
    if not backups:
        return result(
            "failed-jobs-resolved",
            title,
            Status.NO_EVIDENCE,
            "no backup job in the period",
            params=params,
        )
    findings: list[str] = []
    evidence: list[Evidence] = []
    for job in backups:
        if job.state not in _ENDED_BADLY:
            continue
        name = data.resource_name(job.resource_id)
        later = [
            other
            for other in backups
            if other.resource_id == job.resource_id
            and other.created_at > job.created_at
            and other.state in (JobState.COMPLETED, JobState.PARTIAL)
        ]
        how = f"{job.state.value}: {job.error_code or ''} {job.error_message or ''}".strip()
        if later:
            evidence.append(Evidence("job", job.id, f"{name} {how}; resolved by job {later[0].id}"))
        else:
            findings.append(
                f"backup job {job.id} of {name} ended {how}, and no later backup succeeded"
            )
            evidence.append(Evidence("job", job.id, f"{name} {how}; unresolved"))
    failed = sum(1 for job in backups if job.state in _ENDED_BADLY)
    return result(
        "failed-jobs-resolved",
        title,
        Status.FAIL if findings else Status.PASS,
        f"{len(backups)} backup jobs, {failed} ended badly, {len(findings)} unresolved",
        findings,
        evidence,
        params,
    )


def dr_copies(data: Catalogued, params: dict[str, Any]) -> ControlResult:
    """Copies of every point in a second vault, and their lag. strongroom makes no copies
    yet (issue #13): rules that ask for them are refused, so there is no evidence."""
    title = "Disaster-recovery copies in a second vault"
    asked = [name for name, rule in data.rules if rule.copy_actions]
    return result(
        "dr-copies",
        title,
        Status.NO_EVIDENCE,
        "strongroom does not make copies yet (issue #13): no copy can be shown",
        [f"rule {name} asks for copies" for name in asked],
        params=params,
    )

"""Reports and the monitor's state; the audit trail and compliance for auditors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from strongroom.api.auth import Caller, permit
from strongroom.catalog.audit import EntryFilter
from strongroom.catalog.types import JobKind
from strongroom.services.access.roles import Permission
from strongroom.services.audit.service import AuditService, check_json
from strongroom.services.reports.compliance import ComplianceService
from strongroom.services.reports.lag import ReplicationService
from strongroom.services.reports.monitor import MonitorService
from strongroom.services.reports.summary import DEFAULT_MAX_AGE, ReportService
from strongroom.services.retention.periods import parse_duration, parse_since

router = APIRouter(tags=["reports"])
Reader = Annotated[Caller, Depends(permit(Permission.READ))]
Since = Annotated[str | None, Query(description="24h, 7d or an ISO 8601 time (default 24h).")]


@router.get("/reports/summary")
def report_summary(
    caller: Reader,
    since: Since = None,
    max_age: Annotated[str, Query(description="A newest point older than this is stale.")] = "24h",
) -> dict[str, Any]:
    """Totals, success rate, backup age per resource, failures (``report summary``)."""
    context = caller.context
    summary = ReportService(context).summary(
        parse_since(since, context.now()) if since else None,
        max_age=parse_duration(max_age) if max_age else DEFAULT_MAX_AGE,
    )
    return summary.as_json()


@router.get("/reports/detailed")
def report_detailed(
    caller: Reader,
    since: Since = None,
    kind: Annotated[list[JobKind] | None, Query(description="Only these kinds.")] = None,
) -> list[dict[str, Any]]:
    """One row per job of the period, newest first (``report detailed``)."""
    context = caller.context
    return ReportService(context).detailed(
        parse_since(since, context.now()) if since else None, kinds=kind
    )


@router.get("/reports/replication-lag")
def report_replication_lag(caller: Reader) -> list[dict[str, Any]]:
    """How far each copy destination trails its source (``report replication-lag``)."""
    return [pair.as_json() for pair in ReplicationService(caller.context).lag()]


@router.get("/reports/compliance")
def report_compliance(
    caller: Annotated[Caller, Depends(permit(Permission.READ_COMPLIANCE))],
    framework: Annotated[
        list[str], Query(description="soc2, gdpr, pci-dss, hipaa or all; repeatable.")
    ],
    period: Annotated[str, Query(description="How far back: 30d, 12w …")] = "30d",
) -> dict[str, Any]:
    """The compliance report document (``report compliance --format json``), unsigned:
    sign reports on the backup host with ``strongroom report compliance``."""
    return ComplianceService(caller.context).build(framework, period=parse_duration(period))


@router.get("/monitor")
def monitor_state(caller: Reader) -> dict[str, Any]:
    """What the monitor's checks find now (``monitor --once --output json``), without
    publishing alerts or pinging the dead man's switch (the daemon's monitor does that)."""
    return MonitorService(caller.context).evaluate().as_json()


@router.get("/audit")
def list_audit(
    caller: Annotated[Caller, Depends(permit(Permission.READ_AUDIT))],
    since: Since = None,
    actor: Annotated[str | None, Query(description="Only this actor.")] = None,
    action: Annotated[str | None, Query(description="Only this action (prefix*).")] = None,
    subject: Annotated[str | None, Query(description="Only this subject.")] = None,
    outcome: Annotated[str | None, Query(description="succeeded, refused or failed.")] = None,
    after: Annotated[int | None, Query(ge=0, description="Only entries after this seq.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
) -> list[dict[str, Any]]:
    """Audit entries, oldest first (``audit list --output json``): the newest ``limit`` of
    those selected, or, with ``after``, the ``limit`` following that seq."""
    context = caller.context
    where = EntryFilter(
        since=parse_since(since, context.now()) if since else None,
        actor=actor,
        action=action,
        subject=subject,
        outcome=outcome,
        after_seq=after,
    )
    return AuditService(context).list(where, limit=limit)


@router.get("/audit/verify")
def verify_audit(
    caller: Annotated[Caller, Depends(permit(Permission.READ_AUDIT))],
) -> dict[str, Any]:
    """Check the hash chain of the whole trail (``audit verify --output json``)."""
    return check_json(AuditService(caller.context).verify())

"""The evidence controls are evaluated over, read from the catalog once per report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog.audit import ChainCheck, EntryFilter, check_chain, iter_entries
from strongroom.catalog.models import (
    AuditEntry,
    ErasureApplication,
    ErasureRequest,
    Job,
    RecoveryPoint,
    Resource,
    Rule,
    Vault,
)
from strongroom.compliance.model import Period


@dataclass(frozen=True)
class Catalogued:
    """The rows a report looks at (detached from the session, read only)."""

    period: Period
    resources: list[Resource]
    vaults: list[Vault]
    rules: list[tuple[str, Rule]]
    points: list[RecoveryPoint]
    jobs: list[Job]
    audit_entries: list[AuditEntry]
    key_rotations: dict[str, datetime]
    audit_check: ChainCheck
    extra: dict[str, Any]
    erasure_requests: list[ErasureRequest] = field(default_factory=list)
    """Erasure requests recorded before the period ended (open or cancelled)."""
    erasure_applications: list[ErasureApplication] = field(default_factory=list)
    """Their re-applications by restores and restore tests before the period ended."""

    @property
    def protected(self) -> list[Resource]:
        """The resources backups are expected of: those named in ``extra["protected"]``
        (the resources some plan selects), or every resource when it is not given."""
        names = self.extra.get("protected")
        if names is None:
            return self.resources
        return [resource for resource in self.resources if resource.name in set(names)]

    def resource_name(self, resource_id: int | None) -> str:
        """The name of a resource by id (``?`` for an unknown one)."""
        for resource in self.resources:
            if resource.id == resource_id:
                return resource.name
        return "?"

    def vault_name(self, vault_id: int | None) -> str:
        """The name of a vault by id (``?`` for an unknown one)."""
        for vault in self.vaults:
            if vault.id == vault_id:
                return vault.name
        return "?"


def gather(session: Session, period: Period, extra: dict[str, Any] | None = None) -> Catalogued:
    """Read the evidence of ``period`` from the catalog: every resource, vault and rule;
    the points made before the period ended; the jobs created in it; the audit entries of
    the period, the last key rotation of each vault, the check of the whole chain, and
    the erasure requests and their re-applications recorded before the period ended."""
    rules = [
        (f"{rule.plan.name}/{rule.name}", rule)
        for rule in session.scalars(select(Rule).order_by(Rule.id))
    ]
    for _, rule in rules:
        _ = rule.vault.name  # loaded now: the rows are read after the session closes
    points = list(
        session.scalars(
            select(RecoveryPoint)
            .where(RecoveryPoint.created_at < period.end)
            .order_by(RecoveryPoint.created_at, RecoveryPoint.id)
        )
    )
    jobs = list(
        session.scalars(
            select(Job)
            .where(Job.created_at >= period.start, Job.created_at < period.end)
            .order_by(Job.created_at, Job.id)
        )
    )
    rotations: dict[str, datetime] = {}
    for entry in iter_entries(session, EntryFilter(action="vault.key.rotate", outcome="succeeded")):
        if entry.at < period.end:
            rotations[entry.subject] = entry.at
    return Catalogued(
        period=period,
        resources=list(session.scalars(select(Resource).order_by(Resource.name))),
        vaults=list(session.scalars(select(Vault).order_by(Vault.name))),
        rules=rules,
        points=points,
        jobs=jobs,
        audit_entries=list(
            iter_entries(session, EntryFilter(since=period.start, until=period.end))
        ),
        key_rotations=rotations,
        audit_check=check_chain(session),
        extra=dict(extra or {}),
        erasure_requests=list(
            session.scalars(
                select(ErasureRequest)
                .where(ErasureRequest.requested_at < period.end)
                .order_by(ErasureRequest.requested_at, ErasureRequest.id)
            )
        ),
        erasure_applications=list(
            session.scalars(
                select(ErasureApplication)
                .where(ErasureApplication.applied_at < period.end)
                .order_by(ErasureApplication.applied_at, ErasureApplication.id)
            )
        ),
    )

"""``strongroom report compliance``: frameworks evaluated over the catalog, as a dated,
signed JSON, HTML or PDF document.

The document is computed from the catalog alone (given the same ``until`` and catalog,
the same controls, findings and evidence), carries the audit trail's head so a later
reader can tell whether entries were removed since, and is signed with Ed25519
(``signing.py``). Generating one is itself an audit entry (``report.generate``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session

import strongroom
from strongroom.catalog.resources import list_plans, list_resources
from strongroom.compliance.charts import coverage_calendar, restore_test_history
from strongroom.compliance.evidence import gather
from strongroom.compliance.frameworks import evaluate, resolve
from strongroom.compliance.model import Period, worst
from strongroom.services.audit.trail import record_alone
from strongroom.services.context import AppContext
from strongroom.services.declare.records import selected_resources, selection_models
from strongroom.services.reports import html
from strongroom.services.reports.signing import default_key_path, load_private_key, sign_file

FORMAT_VERSION: Final = 1


class ReportFormat(StrEnum):
    """The file formats of a compliance report."""

    json = "json"
    html = "html"
    pdf = "pdf"


@dataclass(frozen=True)
class WrittenReport:
    """A report on disk: where, its signature (None when unsigned), its overall status."""

    path: Path
    signature: Path | None
    status: str
    frameworks: dict[str, str]


def protected_resources(session: Session) -> list[str]:
    """The resources some plan's rules back up: those a coverage or restore-test control
    expects evidence for (a declared resource no plan selects is not expected to have
    backups)."""
    resources = {
        row.name: (row.type, {str(key): str(value) for key, value in row.tags.items()})
        for row in list_resources(session)
    }
    chosen: set[str] = set()
    for plan in list_plans(session):
        if plan.rules:
            chosen.update(selected_resources(selection_models(plan), resources))
    return sorted(chosen)


class ComplianceService:
    """Builds and writes compliance reports from one context's catalog."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def build(
        self,
        frameworks: list[str],
        *,
        period: timedelta,
        until: datetime | None = None,
        restore_procedure: Path | None = None,
    ) -> dict[str, Any]:
        """Evaluate ``frameworks`` (names, ``all`` or YAML paths) over ``[until - period,
        until)`` (default until now) and return the report document.

        Raises ConfigError for an unknown framework, control or parameter.
        """
        chosen = resolve(frameworks)
        end = until or self.context.now()
        window = Period(end - period, end)
        with self.context.catalog.session(readonly=True) as session:
            extra = {
                "restore_procedure": str(restore_procedure) if restore_procedure else None,
                "protected": protected_resources(session),
            }
            data = gather(session, window, extra)
        results = [evaluate(framework, data) for framework in chosen]
        check = data.audit_check
        return {
            "report": "strongroom compliance report",
            "format_version": FORMAT_VERSION,
            "strongroom_version": strongroom.__version__,
            "generated_at": self.context.now().isoformat(),
            "generated_by": self.context.actor.name,
            "catalog": self.context.catalog.display_url,
            "period": window.as_json(),
            "status": worst([result.status for result in results]).value,
            "summary": {result.framework.name: result.status.value for result in results},
            "audit_trail": {
                "intact": check.intact,
                "entries": check.entries,
                "head_seq": check.head_seq,
                "head_hash": check.head_hash,
            },
            "frameworks": [result.as_json() for result in results],
            "charts": {
                "coverage": coverage_calendar(data),
                "restore_tests": restore_test_history(data),
            },
        }

    def write(
        self,
        document: dict[str, Any],
        path: Path,
        output_format: ReportFormat,
        *,
        signing_key: Path | None = None,
        unsigned: bool = False,
    ) -> WrittenReport:
        """Write ``document`` to ``path`` as ``output_format`` and sign it (``path.sig``)
        with ``signing_key`` (default ``HOME/keys/report-signing.key``) unless
        ``unsigned``; record the generation in the audit trail.

        Raises NotFoundError for a missing signing key (before anything is written),
        ConfigError for an unreadable one.
        """
        key = (
            None
            if unsigned
            else load_private_key(signing_key or default_key_path(self.context.home))
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        if output_format is ReportFormat.json:
            path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        elif output_format is ReportFormat.html:
            path.write_text(html.render(document), encoding="utf-8")
        else:
            html.write_pdf(document, path)
        signature = None if key is None else sign_file(path, key, at=self.context.now())
        record_alone(
            self.context,
            action="report.generate",
            subject="compliance",
            outcome="succeeded",
            details={
                "frameworks": document["summary"],
                "period": document["period"],
                "format": output_format.value,
                "file": str(path),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "signed": signature is not None,
            },
        )
        return WrittenReport(path, signature, document["status"], dict(document["summary"]))

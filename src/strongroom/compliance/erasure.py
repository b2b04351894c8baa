"""The GDPR Art. 17 control: erasure requests recorded, and re-applied by every restore.

Backups are immutable, so a subject's erasure lives on as a request that every restore of
the resource re-applies (``services/erasure/``). This control lists the requests open at
the end of the period and those re-applied, and fails for a restore of an affected
resource, completed in the period after the request, that kept no evidence of
re-applying it. Subjects' ids are not printed: the request id refers to them.
"""

from __future__ import annotations

from typing import Any

from strongroom.catalog.types import JobKind, JobState
from strongroom.compliance.evidence import Catalogued
from strongroom.compliance.model import ControlResult, Evidence, Status, result


def erasure_requests(data: Catalogued, params: dict[str, Any]) -> ControlResult:
    """Erasure requests in force and their re-application by restores (see the module)."""
    title = "Erasure requests re-applied by every restore (GDPR Art. 17)"
    requests = data.erasure_requests
    if not requests:
        return result(
            "erasure-requests", title, Status.NOT_APPLICABLE, "no erasure request", params=params
        )
    end = data.period.end
    applied: dict[str, list[Any]] = {request.id: [] for request in requests}
    for application in data.erasure_applications:
        applied.setdefault(application.request_id, []).append(application)
    restores = [
        job
        for job in data.jobs
        if job.kind == JobKind.RESTORE and job.state == JobState.COMPLETED and job.finished_at
    ]
    findings: list[str] = []
    evidence: list[Evidence] = []
    open_count = 0
    for request in requests:
        in_force = request.state == "open" or (
            request.cancelled_at is not None and request.cancelled_at >= end
        )
        open_count += in_force
        done = applied[request.id]
        state = "open" if in_force else f"cancelled {request.cancelled_at:%Y-%m-%d}"
        evidence.append(
            Evidence(
                "erasure",
                request.id,
                f"{request.resource}: {state}, requested {request.requested_at:%Y-%m-%d} by "
                f"{request.requested_by}, due {request.due_at:%Y-%m-%d}, re-applied "
                f"{len(done)} time(s)",
            )
        )
        if not in_force:
            continue
        evidenced = {application.job_id for application in done}
        for job in restores:
            started = job.started_at or job.created_at
            if (
                data.resource_name(job.resource_id) == request.resource
                and started >= request.requested_at
                and job.id not in evidenced
            ):
                findings.append(
                    f"restore job {job.id} of {request.resource} completed without re-applying "
                    f"erasure request {request.id}"
                )
                evidence.append(Evidence("job", job.id, "restore without erasure evidence"))
    reapplied = sum(1 for request in requests if applied[request.id])
    return result(
        "erasure-requests",
        title,
        Status.FAIL if findings else Status.PASS,
        f"{open_count} open erasure request(s), {reapplied} re-applied by restores",
        findings,
        evidence,
        params,
    )

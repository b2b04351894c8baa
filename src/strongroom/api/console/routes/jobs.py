"""Jobs: a filtered list a page at a time, one job with its transitions and events, and
its live progress as JSON (the page's script polls it while the job runs)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Response
from fastapi.responses import JSONResponse, RedirectResponse

from strongroom.api.console.access import CONSOLE_PREFIX, Viewer, current_viewer
from strongroom.api.console.pages import PAGE_SIZE, ConsoleRoute, keyset, page
from strongroom.api.console.render import when
from strongroom.api.paging import decode_cursor
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.views import JobView
from strongroom.errors import ConfigError
from strongroom.services.access.roles import Permission
from strongroom.services.jobs.feed import JobFeedService
from strongroom.services.jobs.operations import OperationsService

router = APIRouter(route_class=ConsoleRoute)
Logged = Annotated[Viewer, Depends(current_viewer)]
EVENTS_SHOWN = 200


def _choice(enum: Any, text: str | None, what: str) -> Any:
    if not text:
        return None
    try:
        return [enum(text)]
    except ValueError:
        names = ", ".join(member.value for member in enum)
        raise ConfigError(f"unknown {what} {text!r}", hint=f"One of: {names}.") from None


@router.get("/jobs")
def jobs(
    viewer: Logged,
    kind: str | None = None,
    state: str | None = None,
    resource: str | None = None,
    cursor: str | None = None,
) -> Response:
    """Jobs newest first, filtered by kind, state and resource."""
    viewer.authorize(Permission.READ, subject="console:jobs")
    rows = OperationsService(viewer.caller.context).list_jobs(
        kinds=_choice(JobKind, kind, "job kind"),
        states=_choice(JobState, state, "job state"),
        resource=resource or None,
        limit=PAGE_SIZE + 1,
        after=decode_cursor(cursor),
    )
    found = keyset(rows, lambda job: (job.created_at, job.id))
    filters = {"kind": kind or "", "state": state or "", "resource": resource or ""}
    return page(
        viewer,
        "jobs.html",
        "jobs",
        {
            "jobs": found,
            "filters": filters,
            "kinds": [member.value for member in JobKind],
            "states": [member.value for member in JobState],
            "cursor": cursor,
        },
    )


@router.get("/jobs/{job_id}")
def job(viewer: Logged, job_id: str) -> Response:
    """One job: state, progress, result or error, transitions and events."""
    viewer.authorize(Permission.READ, subject=f"console:job:{job_id}")
    context = viewer.caller.context
    description = OperationsService(context).describe_job(job_id)
    events = JobFeedService(context).events(description.job.id, limit=EVENTS_SHOWN)
    return page(
        viewer,
        "job.html",
        "jobs",
        {"job": description.job, "transitions": description.transitions, "events": events},
    )


def progress_json(job: JobView) -> dict[str, Any]:
    """What the job page's script shows while it polls: state, attempt, progress, result."""
    return {
        "id": job.id,
        "state": job.state.value,
        "terminal": job.is_terminal,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "progress": dict(job.progress or {}),
        "error": None if job.error is None else f"{job.error.code}: {job.error.message}",
        "point_id": (job.result or {}).get("point_id"),
        "updated_at": when(job.updated_at),
    }


@router.get("/jobs/{job_id}/progress")
def progress(viewer: Logged, job_id: str) -> Response:
    """The job's progress as JSON, for the job page's polling script."""
    viewer.authorize(Permission.READ, subject=f"console:job:{job_id}")
    description = OperationsService(viewer.caller.context).describe_job(job_id)
    return JSONResponse(progress_json(description.job))


@router.post("/jobs/{job_id}/cancel")
def cancel(
    viewer: Logged, job_id: str, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """Ask a queued or running job to stop (operator, restorer, admin)."""
    viewer.check_form(csrf)
    viewer.authorize(Permission.CANCEL_JOB, subject=job_id)
    cancelled = OperationsService(viewer.caller.context).cancel_job(
        job_id, reason=f"cancelled in the console by {viewer.name}"
    )
    return RedirectResponse(f"{CONSOLE_PREFIX}/jobs/{cancelled.id}", status_code=303)

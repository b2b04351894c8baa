"""Jobs: start (202 and a URL to poll), list, show, wait, cancel, and their events.

Starting answers ``202 Accepted`` with the job (as ``start-backup --output json``) and
``Location: /api/v1/jobs/{id}``; ``?wait=SECONDS`` waits up to that long for the job to end
and answers as its outcome (the job's own error status when it failed: a restore target
that exists is ``409``). The daemon's workers run the jobs.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.auth import Caller, api_state, permit
from strongroom.api.errors import error_body, status_of
from strongroom.api.paging import CursorPage, decode_cursor, keyset_page, list_response
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.retry import attempts_in_all
from strongroom.engine.views import JobView, description_document, job_document
from strongroom.services.access.roles import Permission
from strongroom.services.jobs.feed import JobFeedService
from strongroom.services.jobs.operations import OperationsService, error_class_of
from strongroom.services.retention.periods import parse_since

router = APIRouter(tags=["jobs"])
MAX_WAIT_SECONDS: Final = 300.0
Reader = Annotated[Caller, Depends(permit(Permission.READ))]
JobId = Annotated[str, Path(description="The job id (or a unique prefix of it).")]
WaitQuery = Annotated[
    float,
    Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the job to end (0: none)."),
]


class Retry(BaseModel):
    """Retry overrides, as ``--max-attempts`` and ``--retry-interval``."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int | None = Field(
        default=None, ge=0, le=100, description="Retries after the first attempt."
    )
    retry_interval: float | None = Field(
        default=None, gt=0, description="Seconds before the first retry."
    )

    def overrides(self) -> dict[str, Any]:
        """The retry policy fields the services take."""
        overrides: dict[str, Any] = {}
        if self.max_attempts is not None:
            overrides["max_attempts"] = attempts_in_all(self.max_attempts)
        if self.retry_interval is not None:
            overrides["interval_seconds"] = self.retry_interval
        return overrides


class BackupRequest(Retry):
    """``start-backup RESOURCE [--vault V] [--rule PLAN/RULE]``."""

    resource: str = Field(min_length=1, description="The declared resource to back up.")
    vault: str | None = Field(default=None, description="The vault (default: the rule's).")
    rule: str | None = Field(default=None, description="PLAN/RULE whose settings to use.")


class RestoreRequest(Retry):
    """``restore POINT --target KEY=VALUE ...``."""

    point: str = Field(min_length=1, description="Recovery point id (or a unique prefix).")
    target: dict[str, Any] = Field(
        description="The source's restore target: files {path} or {original: true}, "
        "sqlite {path}, postgres {database}, …; see 'strongroom restore --help'."
    )


class VerifyRequest(Retry):
    """``verify [POINT | --vault V] [--read-data] [--restore-test]``."""

    point: str | None = Field(default=None, description="The recovery point to verify.")
    vault: str | None = Field(default=None, description="Verify every point of this vault.")
    read_data: bool = Field(default=False, description="Read and check every stored byte.")
    restore_test: bool = Field(default=False, description="Also restore into a scratch target.")


class CancelRequest(BaseModel):
    """``cancel-job JOB --reason TEXT``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="cancelled by the user", min_length=1, max_length=1000)


def job_location(job_id: str) -> str:
    """The URL path to poll a job at."""
    return f"/api/v1/jobs/{job_id}"


async def _started(caller: Caller, job: JobView, wait: float, request: Request) -> JSONResponse:
    headers = {"Location": job_location(job.id)}
    if wait <= 0:
        return JSONResponse(job_document(job), status_code=202, headers=headers)
    return await _answer_when_ended(caller, job.id, wait, request, headers)


async def _answer_when_ended(
    caller: Caller, job_id: str, wait: float, request: Request, headers: dict[str, str]
) -> JSONResponse:
    """Wait up to ``wait`` seconds for the job to end; answer 200 with its description
    (completed, partial), 202 if it still runs, or its error's status if it failed."""
    service = OperationsService(caller.context)
    poll = api_state(request).poll_seconds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        described = await run_in_threadpool(service.describe_job, job_id)
        job = described.job
        if job.is_terminal or loop.time() >= deadline or await request.is_disconnected():
            break
        await asyncio.sleep(poll)
    document = description_document(job, described.transitions)
    if not job.is_terminal:
        return JSONResponse(document, status_code=202, headers=headers)
    if job.state in (JobState.COMPLETED, JobState.PARTIAL) or job.error is None:
        return JSONResponse(document, status_code=200, headers=headers)
    error_class = error_class_of(job.error.code)
    status = status_of(error_class(job.error.message))
    body = error_body(
        job.error.code,
        f"{job.kind.value} job {job.id} {job.state.value}: {job.error.message}",
        hint=error_class.default_hint,
        retryable=job.error.retryable,
        job=document,
    )
    return JSONResponse(body, status_code=status if status != 500 else 422, headers=headers)


@router.post("/jobs/backup", status_code=202)
async def start_backup(
    body: BackupRequest,
    caller: Annotated[Caller, Depends(permit(Permission.START_BACKUP))],
    request: Request,
    wait: WaitQuery = 0,
) -> JSONResponse:
    """Back up one resource now (``start-backup``)."""
    service = OperationsService(caller.context)
    job = await run_in_threadpool(
        service.start_backup, body.resource, body.vault, body.rule, retry=body.overrides()
    )
    return await _started(caller, job, wait, request)


@router.post("/jobs/restore", status_code=202)
async def start_restore(
    body: RestoreRequest,
    caller: Annotated[Caller, Depends(permit(Permission.START_RESTORE))],
    request: Request,
    wait: WaitQuery = 0,
) -> JSONResponse:
    """Restore a recovery point into a target (``restore``); nothing existing is replaced
    unless the target says so (the job fails with 409 ConflictException otherwise)."""
    service = OperationsService(caller.context)
    job = await run_in_threadpool(
        service.start_restore, body.point, body.target, retry=body.overrides()
    )
    return await _started(caller, job, wait, request)


@router.post("/jobs/verify", status_code=202)
async def start_verify(
    body: VerifyRequest,
    caller: Annotated[Caller, Depends(permit(Permission.START_VERIFY))],
    request: Request,
    wait: WaitQuery = 0,
) -> JSONResponse:
    """Verify a recovery point or a vault, optionally with a restore test (``verify``)."""
    service = OperationsService(caller.context)
    job = await run_in_threadpool(
        lambda: service.start_verify(
            body.point,
            body.vault,
            read_data=body.read_data,
            restore_test=body.restore_test,
            retry=body.overrides(),
        )
    )
    return await _started(caller, job, wait, request)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(
    job_id: JobId,
    caller: Annotated[Caller, Depends(permit(Permission.CANCEL_JOB))],
    body: CancelRequest | None = None,
) -> dict[str, Any]:
    """Cancel a job (``cancel-job``): a queued one ends ABORTED, a running one is asked to stop."""
    reason = body.reason if body is not None else CancelRequest().reason
    return job_document(OperationsService(caller.context).cancel_job(job_id, reason))


@router.get("/jobs")
def list_jobs(
    caller: Reader,
    request: Request,
    response: Response,
    page: Annotated[CursorPage, Depends()],
    kind: Annotated[list[JobKind] | None, Query(description="Only these kinds.")] = None,
    state: Annotated[list[JobState] | None, Query(description="Only these states.")] = None,
    resource: Annotated[str | None, Query(description="Only this resource.")] = None,
    vault: Annotated[str | None, Query(description="Only this vault.")] = None,
    since: Annotated[str | None, Query(description="24h, 7d or an ISO 8601 time.")] = None,
) -> JSONResponse:
    """Jobs newest first (as ``list-backups --output json``, any kind)."""
    context = caller.context
    jobs = OperationsService(context).list_jobs(
        kinds=kind,
        states=state,
        resource=resource,
        vault=vault,
        since=parse_since(since, context.now()) if since else None,
        limit=page.limit + 1,
        after=decode_cursor(page.cursor),
    )
    shown = keyset_page(request, response, page, jobs, lambda job: (job.created_at, job.id))
    return list_response([job_document(job) for job in shown], response)


@router.get("/jobs/{job_id}")
def describe_job(job_id: JobId, caller: Reader) -> dict[str, Any]:
    """One job with its state changes (``describe-job --output json``)."""
    described = OperationsService(caller.context).describe_job(job_id)
    return description_document(described.job, described.transitions)


@router.get("/jobs/{job_id}/wait")
async def wait_job(
    job_id: JobId,
    caller: Reader,
    request: Request,
    timeout: Annotated[
        float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait at most.")
    ] = 30.0,
) -> JSONResponse:
    """Wait for a job to end (``wait-job``): 200 with the job once it ended well, 202 if it
    still runs after ``timeout`` (ask again), the job's error status if it failed."""
    return await _answer_when_ended(
        caller, job_id, timeout, request, {"Location": job_location(job_id)}
    )


@router.get("/jobs/{job_id}/events")
def job_events(
    job_id: JobId,
    caller: Reader,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events per page.")] = 100,
    after: Annotated[int | None, Query(ge=0, description="Only events after this id.")] = None,
) -> JSONResponse:
    """The job's events, oldest first; page with ``after`` (the X-Next-Cursor)."""
    events = JobFeedService(caller.context).events(job_id, after_id=after, limit=limit + 1)
    shown = events[:limit]
    if len(events) > limit:
        cursor = str(shown[-1]["id"])
        next_url = request.url.include_query_params(after=cursor, limit=limit)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
        response.headers["X-Next-Cursor"] = cursor
    return list_response(shown, response)

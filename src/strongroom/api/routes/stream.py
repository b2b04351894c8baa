"""``GET /api/v1/jobs/{id}/events/stream``: a job's events as server-sent events, live.

Each event is sent as ``id: <event id>``, ``event: <type>``, ``data: <event JSON>``; when
the job has ended and every event was sent, an ``end`` event carries the job (as
``describe-job --output json``) and the stream closes. A client that reconnects with
``Last-Event-ID`` (or ``?after=``) continues after that event.

Nothing queues up for a slow client: the stream reads at most a page of events from the
catalog, writes it (uvicorn waits while the client's buffer is full), and only then reads
more. A client that goes away is noticed at the next write or check, and its stream ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from strongroom.api.auth import ApiState, Caller, api_state, permit
from strongroom.engine.views import description_document
from strongroom.services.access.roles import Permission
from strongroom.services.jobs.feed import JobFeedService
from strongroom.services.jobs.operations import OperationsService

router = APIRouter(tags=["jobs"])
PAGE: Final = 100
KEEPALIVE_POLLS: Final = 30
"""Polls without news after which a comment line is sent (keeps proxies from timing out)."""


def sse_frame(event_type: str, data: Any, event_id: int | None = None) -> bytes:
    """One server-sent event."""
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines += [f"event: {event_type}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return ("\n".join(lines) + "\n\n").encode()


@router.get("/jobs/{job_id}/events/stream", response_class=StreamingResponse)
async def stream_job_events(
    job_id: Annotated[str, Path(description="The job id (or a unique prefix of it).")],
    caller: Annotated[Caller, Depends(permit(Permission.READ))],
    request: Request,
    after: Annotated[int | None, Query(ge=0, description="Start after this event id.")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Follow a job live: its events as server-sent events until it ends."""
    operations = OperationsService(caller.context)
    full_id = await run_in_threadpool(operations.resolve_job_id, job_id)  # 404 before streaming
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
    state = api_state(request)
    return StreamingResponse(
        _events(state, caller, full_id, start, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    state: ApiState, caller: Caller, job_id: str, after: int | None, request: Request
) -> AsyncIterator[bytes]:
    feed = JobFeedService(caller.context)
    operations = OperationsService(caller.context)
    state.open_streams += 1
    try:
        yield b": following the job\n\n"  # the client knows the stream is open
        quiet_polls = 0
        while not await request.is_disconnected():
            # Read the job first: events published before it ended are then all visible.
            described = await run_in_threadpool(operations.describe_job, job_id)
            events = await run_in_threadpool(feed.events, job_id, after_id=after, limit=PAGE)
            for event in events:
                after = int(event["id"])
                yield sse_frame(str(event["type"]), event, after)
            if len(events) == PAGE:
                continue
            if described.job.is_terminal:
                yield sse_frame("end", description_document(described.job, described.transitions))
                return
            quiet_polls = 0 if events else quiet_polls + 1
            if quiet_polls >= KEEPALIVE_POLLS:
                quiet_polls = 0
                yield b": keep-alive\n\n"
            await asyncio.sleep(state.poll_seconds)
    finally:
        state.open_streams -= 1

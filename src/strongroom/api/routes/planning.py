"""What will happen: ``schedule preview`` and ``lifecycle preview`` as endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from strongroom.api.auth import Caller, permit
from strongroom.api.paging import OffsetPage, offset_page
from strongroom.services.access.roles import Permission
from strongroom.services.retention.lifecycle_preview import LifecyclePreviewService
from strongroom.services.schedule import ScheduleService, parse_time

router = APIRouter(tags=["planning"])
Reader = Annotated[Caller, Depends(permit(Permission.READ))]


@router.get("/plans/{plan}/schedule")
def schedule_preview(
    plan: Annotated[str, Path(description="The plan's name.")],
    caller: Reader,
    rule: Annotated[str | None, Query(description="Only this rule.")] = None,
    count: Annotated[int, Query(ge=1, le=100, description="Fire times per rule.")] = 5,
    start: Annotated[
        str | None, Query(alias="from", description="Start after this ISO 8601 time.")
    ] = None,
) -> list[dict[str, Any]]:
    """The next fire times of each rule of the plan (``schedule preview --output json``)."""
    previews = ScheduleService(caller.context).preview(
        plan, rule=rule, count=count, start=parse_time(start) if start is not None else None
    )
    return [item.as_json() for item in previews]


@router.get("/lifecycle/preview")
def lifecycle_preview(
    caller: Reader,
    request: Request,
    response: Response,
    page: Annotated[OffsetPage, Depends()],
    vault: Annotated[str | None, Query(description="Only this vault.")] = None,
) -> list[dict[str, Any]]:
    """What moves to cold storage or goes when, and why (``lifecycle preview --output json``)."""
    points = LifecyclePreviewService(caller.context).preview(vault=vault)
    return offset_page(request, response, page, [point.to_json() for point in points])

"""Declared things: ``GET /api/v1/resources`` and ``GET /api/v1/plans`` (as ``list-resources``
and ``list-plans --output json``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from strongroom.api.auth import Caller, permit
from strongroom.api.paging import OffsetPage, offset_page
from strongroom.services.access.roles import Permission
from strongroom.services.declare.listing import ListingService

router = APIRouter(tags=["declared"])
Reader = Annotated[Caller, Depends(permit(Permission.READ))]


@router.get("/resources")
def list_resources(
    caller: Reader,
    request: Request,
    response: Response,
    page: Annotated[OffsetPage, Depends()],
    type: Annotated[str | None, Query(description="Only resources of this type.")] = None,
) -> list[dict[str, Any]]:
    """The resources: type, tags, the plans selecting them, their newest recovery point."""
    resources = ListingService(caller.context).resources(type=type)
    return offset_page(request, response, page, [view.as_json() for view in resources])


@router.get("/plans")
def list_plans(
    caller: Reader, request: Request, response: Response, page: Annotated[OffsetPage, Depends()]
) -> list[dict[str, Any]]:
    """The plans with their rules, selections and the resources selected now."""
    plans = ListingService(caller.context).plans()
    return offset_page(request, response, page, [plan.as_json() for plan in plans])

"""The overview: success rate, backup age against the RPO, failures of the last 24 h,
storage per vault and tier, replication lag, what runs now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from strongroom.api.console.access import Viewer, current_viewer
from strongroom.api.console.pages import ConsoleRoute, page
from strongroom.services.access.roles import Permission
from strongroom.services.reports.overview import OverviewService

router = APIRouter(route_class=ConsoleRoute)


@router.get("/")
def overview(viewer: Annotated[Viewer, Depends(current_viewer)]) -> Response:
    """The overview page."""
    viewer.authorize(Permission.READ, subject="console:overview")
    summary = OverviewService(viewer.caller.context).overview()
    return page(viewer, "overview.html", "overview", {"overview": summary})

"""Reports: the summary of the last days (``report summary``) and the replication lag."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from strongroom.api.console.access import Viewer, current_viewer
from strongroom.api.console.pages import ConsoleRoute, page
from strongroom.services.access.roles import Permission
from strongroom.services.reports.lag import ReplicationService
from strongroom.services.reports.summary import ReportService

router = APIRouter(route_class=ConsoleRoute)


@router.get("/reports")
def reports(
    viewer: Annotated[Viewer, Depends(current_viewer)],
    days: Annotated[int, Query(ge=1, le=90)] = 7,
) -> Response:
    """The summary report over the last ``days`` and the replication lag of every pair."""
    viewer.authorize(Permission.READ, subject="console:reports")
    context = viewer.caller.context
    since = context.now() - timedelta(days=days)
    summary = ReportService(context).summary(since=since)
    lag = ReplicationService(context).lag()
    return page(viewer, "reports.html", "reports", {"summary": summary, "lag": lag, "days": days})

"""Plans (rules, windows and the next firings) and vaults (lock, storage, lifecycle)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from strongroom.api.console.access import Viewer, current_viewer
from strongroom.api.console.pages import PAGE_SIZE, ConsoleRoute, keyset, page
from strongroom.api.paging import decode_cursor
from strongroom.services.access.roles import Permission
from strongroom.services.declare.listing import ListingService
from strongroom.services.jobs.operations import OperationsService
from strongroom.services.reports.overview import OverviewService
from strongroom.services.retention.lifecycle_preview import LifecyclePreviewService
from strongroom.services.retention.lock import VaultLockService
from strongroom.services.schedule import ScheduleService

router = APIRouter(route_class=ConsoleRoute)
Logged = Annotated[Viewer, Depends(current_viewer)]
NEXT_FIRINGS = 5
UPCOMING = 50


@router.get("/plans")
def plans(viewer: Logged) -> Response:
    """Every plan: its rules with schedule, windows, vault and next firings; what it selects."""
    viewer.authorize(Permission.READ, subject="console:plans")
    context = viewer.caller.context
    views = ListingService(context).plans()
    schedule = ScheduleService(context)
    firings = {
        (preview.plan, preview.rule): preview
        for view in views
        for preview in schedule.preview(view.name, count=NEXT_FIRINGS)
    }
    return page(viewer, "plans.html", "plans", {"plans": views, "firings": firings})


@router.get("/vaults")
def vaults(viewer: Logged) -> Response:
    """Every vault: its lock in words and its storage per tier."""
    viewer.authorize(Permission.READ, subject="console:vaults")
    context = viewer.caller.context
    storage: dict[str, dict[str, int]] = {}
    for item in OverviewService(context).overview().storage:
        storage.setdefault(item.vault, {})[item.tier] = item.stored_bytes
    locks = VaultLockService(context)
    rows = [(name, locks.status(name, history=0), tiers) for name, tiers in storage.items()]
    return page(viewer, "vaults.html", "vaults", {"vaults": rows})


@router.get("/vaults/{name}")
def vault(viewer: Logged, name: str, cursor: str | None = None) -> Response:
    """One vault: its lock and its history, what moves or goes next and why, its points."""
    viewer.authorize(Permission.READ, subject=f"console:vault:{name}")
    context = viewer.caller.context
    status = VaultLockService(context).status(name)
    upcoming = LifecyclePreviewService(context).upcoming(vault=name, limit=UPCOMING)
    rows = OperationsService(context).list_recovery_points(
        vault=name, limit=PAGE_SIZE + 1, after=decode_cursor(cursor)
    )
    points = keyset(rows, lambda point: (point.created_at, point.id))
    return page(
        viewer,
        "vault.html",
        "vaults",
        {"name": name, "lock": status, "upcoming": upcoming, "points": points, "cursor": cursor},
    )

"""Resources, their recovery points (with verification and restore-test evidence), and
the actions on them: start a backup, verify, restore (after a confirmation naming the
target), legal hold."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from strongroom.api.console.access import CONSOLE_PREFIX, Viewer, current_viewer
from strongroom.api.console.pages import PAGE_SIZE, ConsoleRoute, keyset, page
from strongroom.api.paging import decode_cursor
from strongroom.errors import ConfigError, NotFoundError
from strongroom.services.access.roles import Permission, authorize_privileged
from strongroom.services.declare.listing import ListingService
from strongroom.services.jobs.operations import OperationsService
from strongroom.services.reports.overview import OverviewService
from strongroom.services.retention.legal_hold import LegalHoldService
from strongroom.services.retention.lifecycle_preview import LifecyclePreviewService
from strongroom.sources import entry_for
from strongroom.sources.targets import target_keys

router = APIRouter(route_class=ConsoleRoute)
Logged = Annotated[Viewer, Depends(current_viewer)]
Csrf = Annotated[str, Form(max_length=128)]


def _job_page(job_id: str) -> Response:
    return RedirectResponse(f"{CONSOLE_PREFIX}/jobs/{job_id}", status_code=303)


@router.get("/resources")
def resources(viewer: Logged) -> Response:
    """Every resource with its type, tags, plans and newest point."""
    viewer.authorize(Permission.READ, subject="console:resources")
    views = ListingService(viewer.caller.context).resources()
    return page(viewer, "resources.html", "resources", {"resources": views})


@router.get("/resources/{name}")
def resource(viewer: Logged, name: str, cursor: str | None = None) -> Response:
    """One resource: its recovery points, newest first, a page at a time."""
    viewer.authorize(Permission.READ, subject=f"console:resource:{name}")
    context = viewer.caller.context
    found = [view for view in ListingService(context).resources() if view.name == name]
    if not found:
        raise NotFoundError(f"no resource named {name!r} in the catalog")
    rows = OperationsService(context).list_recovery_points(
        resource=name, limit=PAGE_SIZE + 1, after=decode_cursor(cursor)
    )
    points = keyset(rows, lambda point: (point.created_at, point.id))
    rules = [
        f"{plan.name}/{rule.name}"
        for plan in ListingService(context).plans()
        if plan.name in found[0].plans
        for rule in plan.rules
    ]
    return page(
        viewer,
        "resource.html",
        "resources",
        {
            "resource": found[0],
            "points": points,
            "cursor": cursor,
            "rules": rules,
            "vaults": OverviewService(context).vault_names(),
        },
    )


@router.post("/resources/{name}/backup")
def start_backup(
    viewer: Logged,
    name: str,
    csrf: Csrf = "",
    into: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Queue a backup of the resource (operator, admin) by a rule (``rule:PLAN/RULE``:
    its retry policy, tags and lifecycle) or into a vault (``vault:NAME``); then show
    its job."""
    viewer.check_form(csrf)
    viewer.authorize(Permission.START_BACKUP, subject=name)
    kind, _, chosen = into.partition(":")
    if kind not in ("rule", "vault") or not chosen:
        raise ConfigError("choose the rule or the vault of the backup")
    job = OperationsService(viewer.caller.context).start_backup(
        name, rule=chosen if kind == "rule" else None, vault=chosen if kind == "vault" else None
    )
    return _job_page(job.id)


@router.get("/points/{point_id}")
def point(viewer: Logged, point_id: str) -> Response:
    """One recovery point: sizes, tags, verification, restore test, lifecycle, actions."""
    viewer.authorize(Permission.READ, subject=f"console:point:{point_id}")
    context = viewer.caller.context
    view = OperationsService(context).point(point_id)
    lifecycle = LifecyclePreviewService(context).of_point(view.id)
    return page(viewer, "point.html", "resources", {"point": view, "lifecycle": lifecycle})


@router.post("/points/{point_id}/verify")
def verify(
    viewer: Logged,
    point_id: str,
    csrf: Csrf = "",
    restore_test: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Queue a verify (reading every byte), with a restore test when asked."""
    viewer.check_form(csrf)
    viewer.authorize(Permission.START_VERIFY, subject=point_id)
    job = OperationsService(viewer.caller.context).start_verify(
        point_id, read_data=True, restore_test=restore_test == "on"
    )
    return _job_page(job.id)


def _target_fields(viewer: Viewer, point_id: str) -> tuple[Any, list[Any]]:
    view = OperationsService(viewer.caller.context).point(point_id)
    entry = entry_for(view.resource_type, resource=view.resource)
    return view, target_keys(entry.target_model())


@router.get("/points/{point_id}/restore")
def restore_form(viewer: Logged, point_id: str) -> Response:
    """The restore form: one field per restore-target key of the resource's source."""
    viewer.authorize(Permission.READ, subject=f"console:point:{point_id}")
    view, keys = _target_fields(viewer, point_id)
    return page(viewer, "restore.html", "resources", {"point": view, "keys": keys, "confirm": None})


async def _target(request: Request, keys: list[Any]) -> dict[str, Any]:
    form = await request.form()
    target: dict[str, Any] = {}
    for key in keys:
        value = form.get(f"target.{key.name}")
        if isinstance(value, str) and value.strip():
            target[key.name] = value.strip()
    if not target:
        raise ConfigError(
            "a restore needs a target: fill in at least one field",
            hint="For example a new path or database name; nothing is overwritten unless "
            "the target says overwrite=true.",
        )
    return target


@router.post("/points/{point_id}/restore")
async def restore(request: Request, viewer: Logged, point_id: str) -> Response:
    """First post: the confirmation page naming the target. Second post (``confirmed``):
    queue the restore (restorer, admin) and show its job."""
    form = await request.form()
    csrf = form.get("csrf")
    viewer.check_form(csrf if isinstance(csrf, str) else None)
    viewer.authorize(Permission.START_RESTORE, subject=point_id)
    view, keys = _target_fields(viewer, point_id)
    target = await _target(request, keys)
    if form.get("confirmed") != "yes":
        return page(
            viewer,
            "restore.html",
            "resources",
            {"point": view, "keys": keys, "confirm": target},
        )
    job = OperationsService(viewer.caller.context).start_restore(view.id, target)
    return _job_page(job.id)


@router.post("/points/{point_id}/legal-hold")
def legal_hold(
    viewer: Logged,
    point_id: str,
    csrf: Csrf = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    remove: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Place a legal hold (operator, admin), or remove one (admin, with a reason)."""
    viewer.check_form(csrf)
    context = viewer.caller.context
    full_id = OperationsService(context).point(point_id).id
    holds = LegalHoldService(context)
    if remove == "yes":
        viewer.authorize(Permission.PRIVILEGED_ACTION, subject=full_id)
        why = authorize_privileged(viewer.caller.principal, reason)
        holds.remove(full_id, actor=viewer.name, reason=why)
    else:
        viewer.authorize(Permission.PLACE_LEGAL_HOLD, subject=full_id)
        holds.add(full_id, reason=reason, actor=viewer.name)
    return RedirectResponse(f"{CONSOLE_PREFIX}/points/{full_id}", status_code=303)

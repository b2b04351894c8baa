"""Recovery points: ``GET /api/v1/recovery-points`` (as ``list-recovery-points --output
json``, keyset-paged) and one point by id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from strongroom.api.auth import Caller, permit
from strongroom.api.paging import CursorPage, decode_cursor, keyset_page, list_response
from strongroom.catalog.types import PointState
from strongroom.services.access.roles import Permission
from strongroom.services.jobs.operations import OperationsService
from strongroom.services.jobs.views import point_json

router = APIRouter(tags=["recovery points"])
Reader = Annotated[Caller, Depends(permit(Permission.READ))]


@router.get("/recovery-points")
def list_recovery_points(
    caller: Reader,
    request: Request,
    response: Response,
    page: Annotated[CursorPage, Depends()],
    vault: Annotated[str | None, Query(description="Only this vault.")] = None,
    resource: Annotated[str | None, Query(description="Only this resource.")] = None,
    state: Annotated[list[PointState] | None, Query(description="Only these states.")] = None,
) -> JSONResponse:
    """Recovery points newest first, with their evidence (verify, restore test)."""
    points = OperationsService(caller.context).list_recovery_points(
        vault=vault,
        resource=resource,
        states=state,
        limit=page.limit + 1,
        after=decode_cursor(page.cursor),
    )
    shown = keyset_page(request, response, page, points, lambda point: (point.created_at, point.id))
    return list_response([point_json(point, with_metadata=True) for point in shown], response)


@router.get("/recovery-points/{point_id}")
def get_recovery_point(
    point_id: Annotated[str, Path(description="Recovery point id (or a unique prefix).")],
    caller: Reader,
) -> dict[str, Any]:
    """One recovery point with its metadata and evidence."""
    return point_json(OperationsService(caller.context).point(point_id), with_metadata=True)

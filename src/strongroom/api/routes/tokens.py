"""``GET /api/v1/tokens``: the API tokens (as ``token list --output json``), for admins.

Tokens are created and revoked with ``strongroom token`` on the backup host only: a
token that could mint tokens would turn one leaked admin token into many.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from strongroom.api.auth import Caller, permit
from strongroom.api.paging import OffsetPage, offset_page
from strongroom.services.access.roles import Permission
from strongroom.services.access.tokens import TokenService

router = APIRouter(tags=["tokens"])


@router.get("/tokens")
def list_tokens(
    caller: Annotated[Caller, Depends(permit(Permission.MANAGE_TOKENS))],
    request: Request,
    response: Response,
    page: Annotated[OffsetPage, Depends()],
) -> list[dict[str, Any]]:
    """Every API token, never its secret: role, state, expiry, last use."""
    now = caller.context.now()
    tokens = TokenService(caller.context).list()
    return offset_page(request, response, page, [token.as_json(now) for token in tokens])

"""``GET /api/v1/whoami``: who the token stands for and what its role permits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from strongroom.api.auth import Caller, authenticated
from strongroom.services.access.roles import ROLE_PERMISSIONS

router = APIRouter(tags=["system"])


@router.get("/whoami")
def whoami(caller: Annotated[Caller, Depends(authenticated)]) -> dict[str, Any]:
    """The principal of the request's token: name, role, token id and permissions."""
    principal = caller.principal
    return {
        "name": principal.name,
        "role": principal.role.value,
        "token_id": principal.token_id,
        "permissions": sorted(permission.value for permission in ROLE_PERMISSIONS[principal.role]),
    }

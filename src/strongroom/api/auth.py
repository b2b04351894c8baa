"""Authentication and authorization of API requests.

A request carries ``Authorization: Bearer <token>``. :func:`resolve_principal` turns a
token into a :class:`~strongroom.services.access.roles.Principal` (rate-limited per
client address, refusals audited and logged without the token); :func:`permit` is the
FastAPI dependency an endpoint declares with the permission it needs, and gives the
endpoint a :class:`Caller`: the principal and a context acting as it, so every service
call is audited with the principal. The console authenticates its own way (a session
cookie holding the token) and calls :func:`resolve_principal` and :func:`caller_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from strongroom.api.limits import FailedLogins
from strongroom.errors import AuthenticationError, PermissionDeniedError
from strongroom.services.access.roles import Permission, Principal, authorize
from strongroom.services.access.tokens import TokenService
from strongroom.services.audit.trail import REFUSED, record_alone
from strongroom.services.context import Actor, AppContext


@dataclass
class ApiState:
    """What every request of one application shares: the server's context and limits."""

    context: AppContext
    failed_logins: FailedLogins
    poll_seconds: float = 0.5
    """How often a waiting request or an event stream looks at the catalog again."""
    open_streams: int = 0
    """Event streams being served now (each ends when its client goes or its job ends)."""


@dataclass(frozen=True)
class Caller:
    """An authenticated request: who, from where, and a context acting as them."""

    principal: Principal
    origin: str
    context: AppContext

    def authorize(self, permission: Permission, *, subject: str = "-") -> None:
        """Check ``permission`` (see :func:`check_permission`)."""
        check_permission(self, permission, subject=subject)


_bearer = HTTPBearer(auto_error=False, description="An API token: strongroom token create.")


def api_state(request: Request) -> ApiState:
    """The :class:`ApiState` of the application serving ``request``."""
    state = request.app.state.strongroom
    if not isinstance(state, ApiState):
        raise RuntimeError("the application was not built by create_app")
    return state


def client_address(request: Request) -> str:
    """The client's address (the proxy's, unless uvicorn trusts its forwarded headers)."""
    return request.client.host if request.client is not None else "unknown"


def resolve_principal(state: ApiState, token: str | None, address: str) -> Principal:
    """Return the principal ``token`` (sent from ``address``) stands for.

    Raises ThrottlingError when ``address`` has too many refused tokens lately, and
    AuthenticationError (audited, logged, counted) for a missing or refused token.
    """
    now = state.context.now()
    state.failed_logins.check(address, now)
    service = TokenService(state.context)
    if not token:
        state.failed_logins.failed(address, now)
        record_alone(
            state.context,
            action="api.authenticate",
            subject="-",
            outcome=REFUSED,
            reason="no token",
            actor=Actor(name="anonymous", origin=f"api from {address}"),
        )
        raise AuthenticationError("this request needs an API token (Authorization: Bearer …)")
    try:
        return service.authenticate(token, origin=f"api from {address}")
    except AuthenticationError:
        state.failed_logins.failed(address, now)
        raise


def caller_for(state: ApiState, principal: Principal, address: str) -> Caller:
    """A :class:`Caller` for ``principal`` on ``state``'s context."""
    origin = f"api from {address}"
    return Caller(principal, origin, state.context.acting_as(principal.actor(origin)))


def check_permission(caller: Caller, permission: Permission, *, subject: str = "-") -> None:
    """Return if the caller's role grants ``permission``; otherwise record the refusal in
    the audit trail and raise PermissionDeniedError."""
    try:
        authorize(caller.principal, permission)
    except PermissionDeniedError as error:
        record_alone(
            caller.context,
            action="api.authorize",
            subject=subject,
            outcome=REFUSED,
            reason=str(error),
            details={"permission": permission.value, "role": caller.principal.role.value},
        )
        raise


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """FastAPI dependency: the request's :class:`Caller`, whatever its role."""
    state = api_state(request)
    address = client_address(request)
    token = credentials.credentials if credentials is not None else None
    return caller_for(state, resolve_principal(state, token, address), address)


def permit(permission: Permission) -> Callable[..., Caller]:
    """FastAPI dependency factory: the request's :class:`Caller`, checked for ``permission``
    (401 without a valid token, 403 without the permission, both audited)."""

    def dependency(caller: Annotated[Caller, Depends(authenticated)], request: Request) -> Caller:
        check_permission(caller, permission, subject=request.url.path)
        return caller

    return dependency

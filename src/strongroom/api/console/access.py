"""Who is looking at a console page, and what they may do.

A page declares ``viewer: Annotated[Viewer, Depends(current_viewer)]``. The viewer comes
from the session cookie (:mod:`strongroom.api.console.sessions`); its token is
authenticated again on every request through the API's own ``resolve_principal``, and
every permission check goes through the API's ``check_permission`` (audited refusals), so
the console and the API share one permission matrix
(:data:`strongroom.services.access.roles.ROLE_PERMISSIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fastapi import Request

from strongroom.api.auth import (
    ApiState,
    Caller,
    api_state,
    caller_for,
    check_permission,
    client_address,
    resolve_principal,
)
from strongroom.api.console.sessions import (
    SESSION_COOKIE,
    ConsoleSession,
    SessionStore,
    same_secret,
)
from strongroom.errors import AuthenticationError, CsrfRefusedError, ThrottlingError
from strongroom.services.access.roles import ROLE_PERMISSIONS, Permission, Role

CONSOLE_PREFIX: Final = "/console"


@dataclass
class ConsoleState:
    """What the console keeps per application: its sessions."""

    sessions: SessionStore


class LoginRequired(Exception):
    """No live session: the browser goes to the login page (``reason`` says why)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Viewer:
    """The logged-in principal of a console request, with its session."""

    caller: Caller
    session: ConsoleSession

    @property
    def role(self) -> Role:
        """The role of the session's token."""
        return self.caller.principal.role

    @property
    def name(self) -> str:
        """The principal's display name (``token:NAME:ID``)."""
        return self.caller.principal.name

    def may(self, permission: Permission | str) -> bool:
        """Whether the viewer's role grants ``permission`` (for showing what is allowed)."""
        return self.caller.principal.may(Permission(permission))

    def authorize(self, permission: Permission, *, subject: str) -> None:
        """Check ``permission`` as the API does (a refusal is audited and raises
        PermissionDeniedError)."""
        check_permission(self.caller, permission, subject=subject)

    def check_form(self, csrf: str | None) -> None:
        """Raise CsrfRefusedError (403, an error page) unless ``csrf`` is the session's
        CSRF token."""
        if not same_secret(csrf, self.session.csrf):
            raise CsrfRefusedError("the form carried no valid CSRF token; nothing was done")


def holders(permission: Permission | str) -> str:
    """The roles that grant ``permission``, for a page's "needs …" note."""
    wanted = Permission(permission)
    return ", ".join(role.value for role, granted in ROLE_PERMISSIONS.items() if wanted in granted)


def console_state(request: Request) -> ConsoleState:
    """The :class:`ConsoleState` of the application serving ``request``."""
    state = request.app.state.console
    if not isinstance(state, ConsoleState):
        raise RuntimeError("the console was not installed with install_console")
    return state


def current_viewer(request: Request) -> Viewer:
    """FastAPI dependency: the request's :class:`Viewer`.

    Raises LoginRequired when there is no live session, or when the session's token is
    now refused (revoked, expired): that session is closed at once.
    """
    sessions = console_state(request).sessions
    state: ApiState = api_state(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = sessions.find(session_id, state.context.now())
    if session is None:
        raise LoginRequired("your session ended; log in again" if session_id else "")
    address = client_address(request)
    try:
        principal = resolve_principal(state, session.token, address)
    except (AuthenticationError, ThrottlingError) as error:
        sessions.close(session.id)
        raise LoginRequired(f"your session ended: {error}") from None
    viewer = Viewer(caller_for(state, principal, address), session)
    request.state.viewer = viewer  # the error pages of this request show the layout
    return viewer

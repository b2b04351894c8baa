"""Logging in with an API token, and out.

The login form is protected against cross-site posts by a double-submit token: the page
sets a random value in a SameSite=Strict cookie and in a hidden field, and the post must
carry both, equal. A refused token answers 401 with the reason (rate-limited and audited
by the API's ``resolve_principal``); a good one opens a session (HttpOnly, SameSite=Strict
cookie, Secure over TLS) and goes to the overview.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from strongroom.api.auth import api_state, client_address, resolve_principal
from strongroom.api.console.access import (
    CONSOLE_PREFIX,
    Viewer,
    console_state,
    current_viewer,
)
from strongroom.api.console.pages import ConsoleRoute
from strongroom.api.console.render import render
from strongroom.api.console.sessions import (
    COOKIE_PATH,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    same_secret,
)
from strongroom.errors import AuthenticationError, ThrottlingError

router = APIRouter(route_class=ConsoleRoute)

ENDED: Final = {
    "logout": "You are logged out.",
    "expired": "Your session ended (timed out, or its token was revoked or expired): log in again.",
}
"""Why the last session ended, by the code the redirect carries (never text from the URL)."""


def _login_page(request: Request, *, message: str = "", status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(32)
    response = render(
        "login.html",
        {"prefix": CONSOLE_PREFIX, "viewer": None, "csrf": nonce, "message": message},
        status=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        nonce,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
def login_form(request: Request, ended: str = "") -> Response:
    """The login page (``ended`` says why the last session ended)."""
    return _login_page(request, message=ENDED.get(ended, ""))


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form(max_length=512)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Check the token and open a session; 403 without the login form's CSRF pair, 401 for
    a refused token, 429 when this address failed too often lately."""
    if not same_secret(csrf, request.cookies.get(LOGIN_CSRF_COOKIE, "")) or not csrf:
        return _login_page(
            request, message="The form expired or came from elsewhere; try again.", status=403
        )
    state = api_state(request)
    try:
        resolve_principal(state, token.strip(), client_address(request))
    except AuthenticationError as error:
        return _login_page(request, message=str(error), status=401)
    except ThrottlingError as error:
        return _login_page(request, message=str(error), status=429)
    session = console_state(request).sessions.open(token.strip(), state.context.now())
    response = RedirectResponse(f"{CONSOLE_PREFIX}/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
def logout(
    request: Request,
    viewer: Annotated[Viewer, Depends(current_viewer)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """End the session (the cookie is cleared and the server forgets it)."""
    viewer.check_form(csrf)
    console_state(request).sessions.close(viewer.session.id)
    response = RedirectResponse(f"{CONSOLE_PREFIX}/login?ended=logout", 303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response

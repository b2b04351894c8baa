"""The web console: server-rendered pages over the same services and permission checks as
the REST API, served by the same application under ``/console``.

:func:`install_console` adds it to an application built by
:func:`strongroom.api.app.create_app`: the pages (``routes/``), the static CSS and script
(``static/``, no build step), the security headers of every console response
(``security.py``) and the sessions a token login opens (``sessions.py``). See
docs/console.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from strongroom.api.console.access import (
    CONSOLE_PREFIX,
    ConsoleState,
    LoginRequired,
)
from strongroom.api.console.routes import declared, jobs, login, overview, reports, resources
from strongroom.api.console.security import ConsoleSecurityHeaders
from strongroom.api.console.sessions import COOKIE_PATH, SESSION_COOKIE, SessionStore

STATIC = Path(__file__).parent / "static"


async def _login_required(request: Request, error: Exception) -> Response:
    if request.url.path.endswith("/progress"):  # the polling script, not a page
        return JSONResponse({"error": "log in again"}, status_code=401)
    reason = "?ended=expired" if isinstance(error, LoginRequired) and error.reason else ""
    response = RedirectResponse(f"{CONSOLE_PREFIX}/login{reason}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def install_console(app: FastAPI, *, sessions: SessionStore | None = None) -> None:
    """Serve the console under ``/console`` on ``app`` (built by ``create_app``).

    ``sessions`` (default: a new store with a 1 h idle and 12 h absolute limit) keeps the
    logged-in browsers.
    """
    app.state.console = ConsoleState(sessions=sessions or SessionStore())
    for module in (login, overview, resources, jobs, declared, reports):
        app.include_router(module.router, prefix=CONSOLE_PREFIX, include_in_schema=False)
    app.mount(f"{CONSOLE_PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_middleware(ConsoleSecurityHeaders, prefix=CONSOLE_PREFIX)

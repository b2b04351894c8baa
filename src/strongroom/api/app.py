"""The FastAPI application: ``create_app(context)`` builds it around one AppContext.

Every endpoint lives under ``/api/v1``; the OpenAPI document is at
``/api/v1/openapi.json`` and its browsable form at ``/api/v1/docs``. Errors answer with
one JSON body (:mod:`strongroom.api.errors`); request bodies over ``max_body_bytes``
are refused with 413 (:class:`~strongroom.api.limits.BodySizeLimit`).
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI

import strongroom
from strongroom.api.auth import ApiState
from strongroom.api.console import install_console
from strongroom.api.errors import install_error_handlers
from strongroom.api.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimit, FailedLogins
from strongroom.api.routes import (
    declared,
    jobs,
    planning,
    points,
    reports,
    stream,
    system,
    tokens,
    vaults,
)
from strongroom.services.context import AppContext

API_PREFIX: Final = "/api/v1"


def create_app(
    context: AppContext,
    *,
    failed_logins: FailedLogins | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    poll_seconds: float = 0.5,
) -> FastAPI:
    """Return the API application serving ``context``'s catalog.

    ``failed_logins`` limits refused tokens per client address (default: 10 in 5
    minutes); ``max_body_bytes`` caps a request body; ``poll_seconds`` is how often a
    waiting request or an event stream looks at the catalog again.
    """
    app = FastAPI(
        title="strongroom",
        version=strongroom.__version__,
        description="Backup automation: resources, plans, jobs, recovery points, vaults.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.strongroom = ApiState(
        context=context, failed_logins=failed_logins or FailedLogins(), poll_seconds=poll_seconds
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    routers = (
        system.router,
        declared.router,
        planning.router,
        jobs.router,
        stream.router,
        points.router,
        vaults.router,
        reports.router,
        tokens.router,
    )
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    install_console(app)  # the web console under /console (docs/console.md)
    return app

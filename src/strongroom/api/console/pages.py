"""What every console page shares: its layout values, errors rendered as pages, and the
route class that turns the errors of the tree into those pages.

A console route returns HTML, never the API's JSON error body: a StrongroomError raised
by a service becomes the error page with the status the API would give
(:func:`strongroom.api.errors.status_of`), its message and its hint.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute

from strongroom.api.console.access import CONSOLE_PREFIX, Viewer, holders
from strongroom.api.console.render import render
from strongroom.api.errors import status_of
from strongroom.api.paging import encode_cursor
from strongroom.errors import (
    AccessDeniedError,
    CsrfRefusedError,
    PermissionDeniedError,
    StrongroomError,
)
from strongroom.logs import mask

PAGE_SIZE: Final = 50
"""Rows of a long list (points, jobs) per page."""
Row = TypeVar("Row")

NAVIGATION: Final = (
    ("overview", "Overview", f"{CONSOLE_PREFIX}/"),
    ("resources", "Resources", f"{CONSOLE_PREFIX}/resources"),
    ("plans", "Plans", f"{CONSOLE_PREFIX}/plans"),
    ("jobs", "Jobs", f"{CONSOLE_PREFIX}/jobs"),
    ("vaults", "Vaults", f"{CONSOLE_PREFIX}/vaults"),
    ("reports", "Reports", f"{CONSOLE_PREFIX}/reports"),
)


@dataclass(frozen=True)
class Rows(Generic[Row]):
    """One page of a keyset-paged list and the cursor of the next (None on the last)."""

    rows: list[Row]
    next_cursor: str | None


def keyset(rows: list[Row], key: Callable[[Row], tuple[datetime, str]]) -> Rows[Row]:
    """The page of ``rows`` fetched with ``PAGE_SIZE + 1`` rows (the API's keyset lists,
    ``after=``), and the cursor after its last row when there is more."""
    chosen = rows[:PAGE_SIZE]
    more = len(rows) > PAGE_SIZE and chosen
    return Rows(chosen, encode_cursor(*key(chosen[-1])) if more else None)


def page(
    viewer: Viewer,
    template: str,
    section: str,
    values: Mapping[str, Any],
    *,
    status: int = 200,
) -> Response:
    """Render ``template`` in the layout, for ``viewer``, under navigation ``section``."""
    return render(
        template,
        {
            "viewer": viewer,
            "csrf": viewer.session.csrf,
            "navigation": NAVIGATION,
            "section": section,
            "prefix": CONSOLE_PREFIX,
            "holders": holders,
            **values,
        },
        status=status,
    )


def error_page(viewer: Viewer | None, error: StrongroomError) -> Response:
    """The page of an error of the tree: its status, message and hint (a refusal by role
    says so and names the roles that may)."""
    title = "Not done"
    if isinstance(error, PermissionDeniedError):
        title = "Not allowed"
    elif isinstance(error, CsrfRefusedError):
        title = "Form refused"
    values = {
        "title": title,
        "refused": isinstance(error, AccessDeniedError),
        "code": error.code,
        "message": mask(str(error)),
        "hint": error.hint,
        "prefix": CONSOLE_PREFIX,
    }
    if viewer is None:
        return render("error.html", values | {"viewer": None}, status=status_of(error))
    return page(viewer, "error.html", "", values, status=status_of(error))


class ConsoleRoute(APIRoute):
    """A route whose StrongroomErrors become error pages (see the module docstring).

    The handler's ``viewer`` argument, when it has one, gives the page its layout.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except StrongroomError as error:
                viewer = request.state.viewer if hasattr(request.state, "viewer") else None
                return error_page(viewer, error)

        return handle

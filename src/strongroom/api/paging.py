"""Pagination: a list endpoint's body is the same JSON array as ``--output json``; the way
to the next page travels in headers.

* ``Link: <URL>; rel="next"`` names the next page (absent on the last one);
* ``X-Next-Cursor`` (keyset lists) or ``X-Next-Offset`` (short lists) holds what the
  next page's ``cursor`` or ``offset`` parameter is.

Short lists (resources, plans) page by ``offset``; long ones (jobs, recovery points,
events, audit entries) by an opaque ``cursor`` that stays stable while rows are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, TypeVar

from fastapi import Query, Request, Response

MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100

Item = TypeVar("Item")


@dataclass
class OffsetPage:
    """Query parameters of an offset-paged list."""

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0


def offset_page(
    request: Request, response: Response, page: OffsetPage, items: list[Item]
) -> list[Item]:
    """Return ``page``'s slice of ``items``, setting the next-page headers on ``response``."""
    chosen = items[page.offset : page.offset + page.limit]
    following = page.offset + page.limit
    if following < len(items):
        next_url = request.url.include_query_params(offset=following, limit=page.limit)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
        response.headers["X-Next-Offset"] = str(following)
    response.headers["X-Total-Count"] = str(len(items))
    return chosen


def next_cursor(request: Request, response: Response, cursor: str | None, limit: int) -> None:
    """Set the next-page headers of a keyset-paged list (nothing when ``cursor`` is None)."""
    if cursor is None:
        return
    next_url = request.url.include_query_params(cursor=cursor, limit=limit)
    response.headers["Link"] = f'<{next_url}>; rel="next"'
    response.headers["X-Next-Cursor"] = cursor

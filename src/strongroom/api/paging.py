"""Pagination: a list endpoint's body is the same JSON array as ``--output json``; the way
to the next page travels in headers.

* ``Link: <URL>; rel="next"`` names the next page (absent on the last one);
* ``X-Next-Cursor`` (keyset lists) or ``X-Next-Offset`` (short lists) holds what the
  next page's ``cursor`` or ``offset`` parameter is.

Short lists (resources, plans) page by ``offset``; long ones (jobs, recovery points,
events, audit entries) by an opaque ``cursor`` that stays stable while rows are added.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, TypeVar

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse

from strongroom.errors import ConfigError

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


def encode_cursor(created_at: datetime, item_id: str) -> str:
    """An opaque cursor naming the last item of a page (its creation time and id)."""
    raw = json.dumps([created_at.isoformat(), item_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (creation time, id) a cursor names; None for None.

    Raises ConfigError (422) for a cursor this server did not make.
    """
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, item_id = json.loads(raw)
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None or not isinstance(item_id, str):
            raise ValueError("not a cursor")
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"cursor {cursor!r} is not one this server made",
            hint="Use the X-Next-Cursor header (or the Link URL) of the previous page.",
        ) from error
    return created_at, item_id


@dataclass
class CursorPage:
    """Query parameters of a keyset-paged list."""

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT
    cursor: Annotated[
        str | None, Query(description="X-Next-Cursor of the previous page; none for the first.")
    ] = None


def keyset_page(
    request: Request,
    response: Response,
    page: CursorPage,
    rows: list[Item],
    key: Callable[[Item], tuple[datetime, str]],
) -> list[Item]:
    """Return the first ``page.limit`` of ``rows`` (fetched with one more, to know whether a
    next page exists), setting the next-page headers."""
    chosen = rows[: page.limit]
    if len(rows) > page.limit and chosen:
        next_cursor(request, response, encode_cursor(*key(chosen[-1])), page.limit)
    return chosen


_PAGE_HEADERS: Final = ("Link", "X-Next-Cursor", "X-Next-Offset", "X-Total-Count")


def list_response(items: list[Any], response: Response) -> JSONResponse:
    """Answer with ``items`` (already JSON-ready: the ``--output json`` documents) and the
    paging headers set on ``response``; skips FastAPI's response-model pass over every
    item, which cost about as much as the query for a page of 100 (bench/api_bench.py)."""
    headers = {name: response.headers[name] for name in _PAGE_HEADERS if name in response.headers}
    return JSONResponse(items, headers=headers)

"""Pages of the long lists (recovery points, jobs, a job's events) by keyset, not offset.

A page is at most ``limit`` rows newest first plus a cursor naming the last row shown;
the next page starts strictly after it. The query walks an index on (filter, created_at)
and reads ``limit + 1`` rows whatever the page number, so page 1000 of a catalog with
100k points costs what page 1 does, and rows added meanwhile never shift a page.

A cursor is ``<ISO time>|<id>`` in URL-safe base64: opaque to callers, checked when read
(``ConfigError`` for one that is not ours).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Generic, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from strongroom.catalog.events import list_events
from strongroom.catalog.models import EventRecord, Job, RecoveryPoint, Resource, Vault
from strongroom.catalog.types import JobKind, JobState, PointState
from strongroom.engine.views import JobView, job_view
from strongroom.errors import ConfigError
from strongroom.services.context import AppContext
from strongroom.services.jobs.views import PointView, point_view

MAX_PAGE: Final = 500
Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    """Rows of one page and the cursor of the next one (None on the last page)."""

    rows: list[Row]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """The cursor after the row created at ``created_at`` with id ``row_id``."""
    text = f"{created_at.isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Return (created_at, id) of a cursor from :func:`encode_cursor`.

    Raises ConfigError for anything else.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        moment, separator, row_id = text.partition("|")
        created_at = datetime.fromisoformat(moment)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        created_at, separator, row_id = None, "", ""
    if created_at is None or not separator or not row_id or created_at.tzinfo is None:
        raise ConfigError(
            "the page cursor is not one this server gave", hint="Start again from page one."
        )
    return created_at, row_id


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ConfigError(f"a page holds 1 to {MAX_PAGE} rows, not {limit}")


def _after(
    created: InstrumentedAttribute[datetime], ident: InstrumentedAttribute[str], cursor: str
) -> object:
    created_at, row_id = decode_cursor(cursor)
    return or_(created < created_at, and_(created == created_at, ident < row_id))


class PageService:
    """Keyset pages of recovery points and jobs, and a job's events, on one context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def points(
        self,
        *,
        resource: str | None = None,
        vault: str | None = None,
        states: Collection[PointState] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[PointView]:
        """Recovery points newest first, of ``resource`` and/or ``vault``, after ``cursor``.

        Raises ConfigError for a bad cursor or limit.
        """
        _check_limit(limit)
        statement = select(RecoveryPoint)
        if resource is not None:
            statement = statement.join(Resource, RecoveryPoint.resource_id == Resource.id).where(
                Resource.name == resource
            )
        if vault is not None:
            statement = statement.join(Vault, RecoveryPoint.vault_id == Vault.id).where(
                Vault.name == vault
            )
        if states is not None:
            statement = statement.where(RecoveryPoint.state.in_(list(states)))
        if cursor is not None:
            statement = statement.where(
                _after(RecoveryPoint.created_at, RecoveryPoint.id, cursor)  # type: ignore[arg-type]
            )
        statement = statement.order_by(
            RecoveryPoint.created_at.desc(), RecoveryPoint.id.desc()
        ).limit(limit + 1)
        with self.context.catalog.session(readonly=True) as session:
            rows = list(session.scalars(statement))
            views = [point_view(row) for row in rows[:limit]]
        return Page(views, _next(views, len(rows) > limit, lambda view: (view.created_at, view.id)))

    def jobs(
        self,
        *,
        kinds: Collection[JobKind] | None = None,
        states: Collection[JobState] | None = None,
        resource: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[JobView]:
        """Jobs newest first, by kind, state and resource, after ``cursor``.

        Raises ConfigError for a bad cursor or limit.
        """
        _check_limit(limit)
        statement = select(Job)
        if kinds is not None:
            statement = statement.where(Job.kind.in_(list(kinds)))
        if states is not None:
            statement = statement.where(Job.state.in_(list(states)))
        if resource is not None:
            statement = statement.join(Resource, Job.resource_id == Resource.id).where(
                Resource.name == resource
            )
        if cursor is not None:
            statement = statement.where(
                _after(Job.created_at, Job.id, cursor)  # type: ignore[arg-type]
            )
        statement = statement.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
        with self.context.catalog.session(readonly=True) as session:
            rows = list(session.scalars(statement))
            views = [job_view(row) for row in rows[:limit]]
        return Page(views, _next(views, len(rows) > limit, lambda view: (view.created_at, view.id)))

    def job_events(
        self, job_id: str, *, after_id: int | None = None, limit: int = 200
    ) -> list[EventRecordView]:
        """The events published about job ``job_id`` (its subject), oldest first, after
        event ``after_id``; at most ``limit``."""
        _check_limit(limit)
        with self.context.catalog.session(readonly=True) as session:
            return [
                _event_view(row)
                for row in list_events(session, subject=job_id, after_id=after_id, limit=limit)
            ]


@dataclass(frozen=True)
class EventRecordView:
    """One published event: id, time, type and payload."""

    id: int
    at: datetime
    type: str
    payload: dict[str, object]


def _event_view(row: EventRecord) -> EventRecordView:
    return EventRecordView(int(row.id), row.at, row.type, dict(row.payload or {}))


def _next(
    rows: Sequence[Row], more: bool, key: Callable[[Row], tuple[datetime, str]]
) -> str | None:
    if not more or not rows:
        return None
    created_at, row_id = key(rows[-1])
    return encode_cursor(created_at, row_id)


__all__ = ["MAX_PAGE", "EventRecordView", "Page", "PageService", "decode_cursor", "encode_cursor"]

"""The events table: an append-only feed of everything the engine published.

Types are dotted names (``backup.job.completed``); listing filters by shell-style type
patterns (``backup.job.*``, ``*.failed``), subject, time or a cursor (``after_id``), so a
dashboard or a second process can follow the feed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_, select
from sqlalchemy.orm import Session

from strongroom.catalog.models import EventRecord

_LIKE_ESCAPE = "\\"


def append_event(
    session: Session, *, at: datetime, type: str, subject: str, payload: Mapping[str, Any]
) -> EventRecord:
    """Append one event and return it with its id (ids grow with every append)."""
    record = EventRecord(at=at, type=type, subject=subject, payload=dict(payload))
    session.add(record)
    session.flush()
    return record


def append_events(
    session: Session, events: Sequence[tuple[datetime, str, str, Mapping[str, Any]]]
) -> list[int]:
    """Append many events (``at``, ``type``, ``subject``, ``payload``); return their ids in
    the order given.

    PostgreSQL returns the ids of one batched insert in order. SQLite would insert row by
    row to do so; there the rows go in one ``executemany`` and the ids are read back: a
    write transaction holds SQLite's only write lock, so the new ids are exactly those
    above the largest one before.
    """
    if not events:
        return []
    rows = [
        {"at": at, "type": type, "subject": subject, "payload": dict(payload)}
        for at, type, subject, payload in events
    ]
    if session.get_bind().dialect.name != "sqlite":
        statement = insert(EventRecord).returning(EventRecord.id, sort_by_parameter_order=True)
        return [int(event_id) for event_id in session.scalars(statement, rows)]
    before = session.scalar(select(func.max(EventRecord.id))) or 0
    session.execute(insert(EventRecord.metadata.tables[EventRecord.__tablename__]), rows)
    new = select(EventRecord.id).where(EventRecord.id > before).order_by(EventRecord.id)
    ids = [int(event_id) for event_id in session.scalars(new)]
    if len(ids) != len(rows):  # pragma: no cover - only if the write lock were not held
        raise RuntimeError(f"appended {len(rows)} events but found {len(ids)} new ids")
    return ids


def list_events(
    session: Session,
    *,
    types: Sequence[str] | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    limit: int | None = 1000,
) -> list[EventRecord]:
    """Return events oldest first, filtered by type patterns (any may match), subject,
    time (``since`` inclusive) and id (``after_id`` exclusive, for following the feed)."""
    statement = select(EventRecord)
    if types is not None:
        statement = statement.where(or_(*(_type_matches(pattern) for pattern in types)))
    if subject is not None:
        statement = statement.where(EventRecord.subject == subject)
    if since is not None:
        statement = statement.where(EventRecord.at >= since)
    if after_id is not None:
        statement = statement.where(EventRecord.id > after_id)
    statement = statement.order_by(EventRecord.id)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement))


def _type_matches(pattern: str) -> ColumnElement[bool]:
    if "*" not in pattern and "?" not in pattern:
        return EventRecord.type == pattern
    escaped = (
        pattern.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )
    like = escaped.replace("*", "%").replace("?", "_")
    return EventRecord.type.like(like, escape=_LIKE_ESCAPE)

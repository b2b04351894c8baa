"""A job's events as the API and a follower read them: oldest first, after an event id.

A job's events are the catalog events whose subject is the job's id (its state changes,
its escalation, a restore test's verdict; see ``docs/events.md``).
"""

from __future__ import annotations

from typing import Any

from strongroom.catalog.events import list_events
from strongroom.catalog.models import EventRecord
from strongroom.services.context import AppContext
from strongroom.services.jobs.operations import OperationsService


def event_json(event: EventRecord) -> dict[str, Any]:
    """One stored event as JSON: ``id``, ``at``, ``type``, ``subject``, ``payload``."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "type": event.type,
        "subject": event.subject,
        "payload": event.payload,
    }


class JobFeedService:
    """Reads the events of jobs on one context's catalog."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def events(
        self, job_id: str, *, after_id: int | None = None, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """The events of job ``job_id`` (full id or unique prefix), oldest first, after
        event ``after_id``. Raises NotFoundError for an unknown job."""
        full_id = OperationsService(self.context).resolve_job_id(job_id)
        with self.context.catalog.session(readonly=True) as session:
            rows = list_events(session, subject=full_id, after_id=after_id, limit=limit)
            return [event_json(row) for row in rows]

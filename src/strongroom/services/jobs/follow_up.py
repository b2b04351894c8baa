"""Follow-up jobs an event rule starts: verify (with read-data), restore-test or copy a point.

The point is the one the event is about: a ``recovery_point.*`` event's subject, or the
``point_id`` in a job event's result (a completed backup) or parameters. A copy goes
through :class:`~strongroom.services.jobs.copies.CopyService` (as ``strongroom copy``
does: checked, queued with the default retry policy, recorded in the audit trail).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.config.notifications import StartJob
from strongroom.engine.views import JobView
from strongroom.errors import ConfigError
from strongroom.services.context import AppContext
from strongroom.services.jobs.copies import CopyService
from strongroom.services.jobs.operations import OperationsService


def point_of(event_type: str, subject: str, payload: Mapping[str, Any]) -> str | None:
    """Return the recovery point an event is about, or None."""
    if event_type.startswith("recovery_point."):
        return subject
    job = payload.get("job")
    if not isinstance(job, Mapping):
        return None
    for source in (job.get("result") or {}, job.get("params") or {}):
        point = source.get("point_id")
        if isinstance(point, str):
            return point
    return None


class FollowUpService:
    """Starts the job an event rule's ``start_job`` target asks for."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.operations = OperationsService(context)

    def start(
        self, target: StartJob, event_type: str, subject: str, payload: Mapping[str, Any]
    ) -> JobView:
        """Queue the follow-up job for the event's recovery point and return it.

        Raises ConfigError when the event is about no recovery point (the rule's pattern
        takes events a job cannot follow) or the point cannot be copied (deleted, already in
        the destination vault), NotFoundError for a point or a vault no longer there.
        """
        point = point_of(event_type, subject, payload)
        if point is None:
            raise ConfigError(
                f"a {event_type} event names no recovery point to {target.kind.replace('_', ' ')}",
                hint="Match backup.job.completed or recovery_point.created in the rule's pattern.",
            )
        if target.kind == "copy" and target.destination_vault is not None:
            lifecycle = target.lifecycle.model_dump(mode="json") if target.lifecycle else None
            return CopyService(self.context).start_copy(
                point, target.destination_vault, lifecycle=lifecycle
            )
        return self.operations.start_verify(
            point, read_data=target.read_data, restore_test=target.kind == "restore_test"
        )

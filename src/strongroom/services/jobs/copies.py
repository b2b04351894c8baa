"""Copy jobs: queue a copy of a recovery point into another vault, by hand or by a rule.

``strongroom copy POINT --to-vault V`` calls :meth:`CopyService.start_copy`; a rule's
copy actions (``copy_actions``, AWS ``CopyActions``) are queued by
:func:`copy_action_jobs`, which the backup handler returns as the follow-ups of its job:
they are inserted in the transaction that completes the backup, so a completed backup
has its copy jobs queued, and a backup that did not complete has none. The event rules
of the events work start copies through :meth:`CopyService.start_copy` as well.

A copy job names the source point's resource, the destination vault and (for a copy
action) the rule; its parameters are::

    {"point_id": SOURCE, "source_vault": NAME, "lifecycle": {move_to_cold_after_days,
     delete_after_days}, "trigger": "on-demand" | "copy-action"}

The work itself is :mod:`strongroom.services.jobs.handlers.copy`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy.orm import Session

from strongroom.catalog.models import RecoveryPoint as PointRow
from strongroom.catalog.models import Rule
from strongroom.catalog.points import find_recovery_point
from strongroom.catalog.resources import get_vault
from strongroom.catalog.types import JobKind, JobState, PointState
from strongroom.config.plans import Lifecycle
from strongroom.engine.retry import RetryPolicy
from strongroom.engine.views import JobView
from strongroom.errors import ConfigError, NotFoundError, StrongroomError
from strongroom.logs import get_logger
from strongroom.services.audit.trail import SUCCEEDED, record_alone, record_refusal
from strongroom.services.context import AppContext

TRIGGER_ON_DEMAND: Final = "on-demand"
TRIGGER_COPY_ACTION: Final = "copy-action"
_log = get_logger(__name__)


def copy_params(
    point_id: str, source_vault: str, lifecycle: Mapping[str, Any], trigger: str
) -> dict[str, Any]:
    """The parameters of a copy job (see the module docstring)."""
    return {
        "point_id": point_id,
        "source_vault": source_vault,
        "lifecycle": {
            "move_to_cold_after_days": lifecycle.get("move_to_cold_after_days"),
            "delete_after_days": lifecycle.get("delete_after_days"),
        },
        "trigger": trigger,
    }


def copy_action_jobs(
    session: Session, now: datetime, *, backup: JobView, point_id: str
) -> list[JobView]:
    """Return the copy jobs of the rule of ``backup`` for its new point ``point_id``.

    One PENDING job per copy action, with the rule's retry policy and no windows (and
    outside the backup's run). A
    copy action whose destination vault is no longer registered is skipped with a
    warning (``apply`` refuses such a rule, so only a catalog edited by hand has one).
    """
    rule = session.get(Rule, backup.rule_id) if backup.rule_id is not None else None
    if rule is None or not rule.copy_actions or backup.vault is None:
        return []
    policy = RetryPolicy.from_mapping(rule.retry_policy or {})
    jobs: list[JobView] = []
    for action in rule.copy_actions:
        name = str(action.get("destination_vault", ""))
        try:
            destination = get_vault(session, name)
        except NotFoundError:
            _log.warning(
                "rule %s: the copy action's vault %r is not registered; no copy of %s queued",
                backup.rule,
                name,
                point_id,
            )
            continue
        jobs.append(
            JobView(
                id=str(uuid.uuid4()),
                kind=JobKind.COPY,
                state=JobState.PENDING,
                resource=backup.resource,
                resource_type=backup.resource_type,
                vault=destination.name,
                rule=backup.rule,
                # Not part of the backup's run: a run summarizes its backups, one per
                # resource, and ends with them.
                run_id=None,
                attempt=1,
                max_attempts=policy.max_attempts,
                retry_interval_seconds=policy.interval_seconds,
                retry_backoff_rate=policy.backoff_rate,
                allow_partial=backup.allow_partial,
                created_at=now,
                updated_at=now,
                params=copy_params(
                    point_id, backup.vault, action.get("lifecycle") or {}, TRIGGER_COPY_ACTION
                ),
                resource_id=backup.resource_id,
                vault_id=destination.id,
                rule_id=backup.rule_id,
            )
        )
    return jobs


class CopyService:
    """Starts copy jobs (``strongroom copy``; the event rules' copy targets)."""

    def __init__(self, context: AppContext) -> None:
        # Imported here: operations imports the handlers, whose backup queues copy actions
        # through this module.
        from strongroom.services.jobs.operations import OperationsService

        self.context = context
        self.operations = OperationsService(context)

    def start_copy(
        self,
        point_id: str,
        to_vault: str,
        *,
        lifecycle: Mapping[str, Any] | None = None,
        retry: Mapping[str, Any] | None = None,
    ) -> JobView:
        """Queue a copy of a recovery point (full id or unique prefix) into ``to_vault``.

        ``lifecycle`` (``move_to_cold_after_days``, ``delete_after_days``) dates the copy
        from its creation; ``retry`` overrides fields of the default retry policy. Raises
        ``NotFoundError`` for an unknown point or vault, ``ConfigError`` for a deleted
        point, a copy into the point's own vault or an invalid lifecycle. The start, or
        its refusal, is recorded in the audit trail (``copy.start``).
        """
        try:
            job_id = self._queue(point_id, to_vault, lifecycle, retry)
        except StrongroomError as error:
            record_refusal(
                self.context,
                action="copy.start",
                subject=point_id,
                error=error,
                details={"vault": to_vault},
            )
            raise
        job = self.operations.jobs.get(job_id)
        record_alone(
            self.context,
            action="copy.start",
            subject=job_id,
            outcome=SUCCEEDED,
            details={
                "job_id": job_id,
                "resource": job.resource,
                "vault": job.vault,
                "params": dict(job.params),
            },
        )
        return job

    def _queue(
        self,
        point_id: str,
        to_vault: str,
        lifecycle: Mapping[str, Any] | None,
        retry: Mapping[str, Any] | None,
    ) -> str:
        try:
            checked = Lifecycle.model_validate(dict(lifecycle or {})).model_dump(mode="json")
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise ConfigError(
                f"invalid lifecycle of the copy: {where + ': ' if where else ''}{problem['msg']}"
            ) from error
        with self.context.catalog.session(readonly=True) as session:
            point = find_recovery_point(session, point_id)
            destination = get_vault(session, to_vault)
            _check_copyable(point, destination.id)
            full_id, resource, source_vault = point.id, point.resource.name, point.vault.name
        return self.operations.jobs.create_job(
            JobKind.COPY,
            resource=resource,
            vault=to_vault,
            params=copy_params(full_id, source_vault, checked, TRIGGER_ON_DEMAND),
            retry_policy=self.operations.retry_policy(None, retry),
        )


def _check_copyable(point: PointRow, destination_id: int) -> None:
    if point.state is PointState.DELETED:
        raise ConfigError(f"recovery point {point.id} was deleted; its data is gone")
    if point.vault_id == destination_id:
        raise ConfigError(
            f"recovery point {point.id} is in vault {point.vault.name!r} already",
            hint="Copy it to another vault.",
        )

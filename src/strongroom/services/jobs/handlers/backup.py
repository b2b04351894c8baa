"""The backup job: one resource into one vault, committed as one recovery point.

The handler loads the resource's configuration model and the rule's tags and lifecycle
from the catalog, builds the source, opens the job's vault and lets the source write its
streams into a vault writer. The point is committed only when the source finished and
the job was not cancelled; on any error, on cancellation, and for a partial result the
job may not keep, the writer is aborted and no recovery point exists (the engine then
fails or retries the job). A committed point is recorded in the catalog with its sizes,
tags and lifecycle dates in the same transaction that completes the job, after its lease
check (``JobResult.record``): a worker that lost its lease meanwhile records nothing, so a
retry cannot leave two catalog points for one job. Its id is the job result's
``point_id``.

The manifest's metadata is ``{"source": {"type", "resource"}, "result": <the source's
metadata>}`` (plus ``failed_parts`` for a partial point); the tags are the rule's
recovery-point tags plus ``strongroom:resource``, ``strongroom:job`` and, for a rule's
job, ``strongroom:rule`` (``plan/rule``). The catalog can be rebuilt from these.

Events the source reports (``BackupResult.events``: a Kafka retention gap) are published
with the job's end, naming the resource, vault and point (``JobResult.events``).

The rule's copy actions are queued as copy jobs in the transaction that completes the
backup (``JobResult.follow_ups``, :func:`~strongroom.services.jobs.copies.copy_action_jobs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog.models import Rule
from strongroom.catalog.points import record_recovery_point
from strongroom.catalog.types import PointState
from strongroom.engine.context import JobContext, JobResult
from strongroom.logs import get_logger
from strongroom.services.context import AppContext
from strongroom.services.declare.resources import resource_config
from strongroom.services.jobs.copies import copy_action_jobs
from strongroom.services.jobs.handlers.common import (
    build_source,
    discard_unrecorded,
    required,
    required_id,
    scratch_folder,
    source_context,
)
from strongroom.services.vaults.service import VaultService
from strongroom.sources.base import BackupResult, CheckpointingSource

TAG_RESOURCE: Final = "strongroom:resource"
TAG_JOB: Final = "strongroom:job"
TAG_RULE: Final = "strongroom:rule"
_log = get_logger(__name__)


@dataclass(frozen=True)
class RuleSettings:
    """What a backup takes from its rule: recovery-point tags and the lifecycle."""

    tags: Mapping[str, str] = field(default_factory=dict)
    move_to_cold_after_days: int | None = None
    delete_after_days: int | None = None

    def dates(self, created: datetime) -> tuple[datetime | None, datetime | None]:
        """Return when a point created at ``created`` moves to the cold tier and is deleted."""

        def after(days: int | None) -> datetime | None:
            return created + timedelta(days=days) if days else None

        return after(self.move_to_cold_after_days), after(self.delete_after_days)


def rule_settings(session: Session, rule_id: int | None) -> RuleSettings:
    """Read the tags and lifecycle of rule ``rule_id`` (empty settings without a rule).

    The lifecycle is stored as the configuration's ``Lifecycle`` model dumps it
    (``move_to_cold_after_days``, ``delete_after_days``).
    """
    rule = session.get(Rule, rule_id) if rule_id is not None else None
    if rule is None:
        return RuleSettings()
    lifecycle = rule.lifecycle or {}
    return RuleSettings(
        tags={str(key): str(value) for key, value in (rule.recovery_point_tags or {}).items()},
        move_to_cold_after_days=lifecycle_days(lifecycle.get("move_to_cold_after_days")),
        delete_after_days=lifecycle_days(lifecycle.get("delete_after_days")),
    )


def lifecycle_days(value: Any) -> int | None:
    """A stored lifecycle day count as a positive int, or None (unset or invalid)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(value)


def run_backup(context: AppContext, job_context: JobContext) -> JobResult:
    """Back up the job's resource into the job's vault; see the module docstring."""
    job = job_context.job
    name = required(job.resource, "resource to back up")
    vault_name = required(job.vault, "target vault (give one, or a rule that names one)")
    with context.catalog.session(readonly=True) as session:
        model = resource_config(session, name)
        rule = rule_settings(session, job.rule_id)
    source = build_source(context, name, model)
    tags = {**rule.tags, TAG_RESOURCE: name, TAG_JOB: job.id}
    if job.rule is not None:
        tags[TAG_RULE] = job.rule
    with VaultService(context).open(vault_name) as vault, scratch_folder(context, job) as scratch:
        job_context.cancel.raise_if_cancelled()
        with vault.writer() as writer:
            result = source.backup(source_context(job_context, scratch, "bytes read"), writer)
            job_context.cancel.raise_if_cancelled()
            if result.partial and not job.allow_partial:
                writer.abort()  # the engine fails the job: its data never becomes a point
                return JobResult(
                    data={"resource": name, "vault": vault_name, **_failed(result)},
                    partial=True,
                    message=_partial_message(result),
                )
            metadata: dict[str, Any] = {
                "source": {"type": model.type, "resource": name},
                "result": result.metadata,
            }
            if result.partial:
                metadata["failed_parts"] = dict(result.failed_parts)
            point_id = writer.commit(metadata=metadata, tags=tags)
        # A locked S3 vault: the older packs this point reuses stay retained as long as it.
        VaultService(context).protect_point(vault_name, vault, point_id)
        point = vault.point(point_id)
    completed_at = job_context.clock.now()
    created_at = job.started_at or completed_at
    move_to_cold_at, delete_at = rule.dates(created_at)
    stats = point.stats
    vault_id = required_id(job.vault_id, "vault")
    resource_id = required_id(job.resource_id, "resource")

    def record(session: Session) -> None:
        # Runs in the transaction that ends the job, after its lease check (see JobResult);
        # if it raises, the executor discards the point and the attempt fails.
        record_recovery_point(
            session,
            point_id=point.id,
            vault_id=vault_id,
            resource_id=resource_id,
            job_id=job.id,
            created_at=created_at,
            completed_at=completed_at,
            logical_size=stats.logical_size,
            stored_size=stats.stored_size,
            tags=tags,
            move_to_cold_at=move_to_cold_at,
            delete_at=delete_at,
            metadata=metadata,
            state=PointState.PARTIAL if result.partial else PointState.AVAILABLE,
        )
        if isinstance(source, CheckpointingSource):
            # Last in the transaction that records the point, so a point the catalog
            # refused never advances the checkpoint (the next backup reads that data again).
            source.commit_checkpoint(result.metadata, point.id)

    data = {
        "point_id": point.id,
        "resource": name,
        "resource_type": model.type,
        "vault": vault_name,
        "streams": len(point.streams),
        "logical_size": stats.logical_size,
        "stored_size": stats.stored_size,
        "new_stored_size": stats.new_stored_size,
        "chunk_count": stats.chunk_count,
        "new_chunk_count": stats.new_chunk_count,
        "move_to_cold_at": move_to_cold_at.isoformat() if move_to_cold_at else None,
        "delete_at": delete_at.isoformat() if delete_at else None,
        **_failed(result),
    }
    return JobResult(
        data=data,
        partial=result.partial,
        message=_partial_message(result) if result.partial else f"recovery point {point.id}",
        record=record,
        discard=lambda: discard_unrecorded(context, vault_name, point.id, job.id),
        follow_ups=lambda session, now: copy_action_jobs(
            session, now, backup=job, point_id=point.id
        ),
        events=[
            (
                event.type,
                point.id,
                {
                    **event.details,
                    "resource": name,
                    "resource_type": model.type,
                    "vault": vault_name,
                    "point_id": point.id,
                    "job_id": job.id,
                },
            )
            for event in result.events
        ],
    )


def _failed(result: BackupResult) -> dict[str, Any]:
    return {"failed_parts": dict(result.failed_parts)} if result.partial else {}


def _partial_message(result: BackupResult) -> str:
    parts = [f"{part}: {reason}" for part, reason in list(result.failed_parts.items())[:5]]
    more = len(result.failed_parts) - len(parts)
    return "failed parts: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")

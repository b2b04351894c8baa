"""The copy job: one recovery point into another vault, committed as a point of its own.

The handler finds the source point in the catalog, opens the source vault and the job's
(destination) vault with their registered keys and copies the point with
:func:`strongroom.vault.copy.copy_point`: the data is re-encrypted with the destination's
keys, deduplicated against its index and committed with the same writer protocol as a
backup (leases, pack presence, the manifest last). The source is only read. On any
error or a cancellation nothing is committed and the engine fails or retries the job.

The copy keeps the source point's metadata, with ``copy_of`` (source point id, vault
name and id, creation time) added; its tags are the source's with ``strongroom:job`` set
to the copy job and ``strongroom:copy-of`` to the source point, so ``catalog rebuild``
of the destination finds the link. The catalog row of the copy names its
``source_point_id``; its lifecycle dates come from the job's ``lifecycle`` (the copy
action's), counted from the copy's creation. The row is written in the transaction that
completes the job (``JobResult.record``), as for a backup.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog.points import get_recovery_point, record_recovery_point
from strongroom.catalog.types import PointState
from strongroom.engine.context import JobContext, JobResult
from strongroom.errors import ConfigError
from strongroom.logs import get_logger
from strongroom.services.context import AppContext
from strongroom.services.jobs.handlers.backup import TAG_JOB, RuleSettings, lifecycle_days
from strongroom.services.jobs.handlers.common import (
    byte_progress,
    discard_unrecorded,
    required,
    required_id,
)
from strongroom.services.vaults.service import VaultService
from strongroom.vault.copy import copy_point

TAG_COPY_OF: Final = "strongroom:copy-of"
_log = get_logger(__name__)


def run_copy(context: AppContext, job_context: JobContext) -> JobResult:
    """Copy the job's point into the job's vault; see the module docstring."""
    job = job_context.job
    destination = required(job.vault, "destination vault")
    source_id = required(str(job.params.get("point_id") or ""), "point to copy")
    lifecycle = job.params.get("lifecycle") or {}
    settings = RuleSettings(
        move_to_cold_after_days=lifecycle_days(lifecycle.get("move_to_cold_after_days")),
        delete_after_days=lifecycle_days(lifecycle.get("delete_after_days")),
    )
    with context.catalog.session(readonly=True) as session:
        source_row = get_recovery_point(session, source_id)
        if source_row.state is PointState.DELETED:
            raise ConfigError(f"recovery point {source_id} was deleted; there is nothing to copy")
        source_vault = source_row.vault.name
        state = source_row.state
    vaults = VaultService(context)
    with vaults.open(source_vault) as source, vaults.open(destination) as target:
        job_context.cancel.raise_if_cancelled()
        point = source.point(source_id)
        tags = {**point.tags, TAG_JOB: job.id, TAG_COPY_OF: source_id}
        outcome = copy_point(
            source,
            source_id,
            target,
            tags=tags,
            link={"vault": source_vault},
            check=job_context.cancel.raise_if_cancelled,
            progress=byte_progress(job_context, "bytes copied"),
        )
    copy = outcome.point
    completed_at = job_context.clock.now()
    created_at = job.started_at or completed_at
    move_to_cold_at, delete_at = settings.dates(created_at)
    stats = copy.stats
    vault_id = required_id(job.vault_id, "vault")
    resource_id = required_id(job.resource_id, "resource")

    def record(session: Session) -> None:
        record_recovery_point(
            session,
            point_id=copy.id,
            vault_id=vault_id,
            resource_id=resource_id,
            job_id=job.id,
            created_at=created_at,
            completed_at=completed_at,
            logical_size=stats.logical_size,
            stored_size=stats.stored_size,
            tags=copy.tags,
            move_to_cold_at=move_to_cold_at,
            delete_at=delete_at,
            metadata=copy.metadata,
            state=state,
            source_point_id=source_id,
        )

    data: dict[str, Any] = {
        "point_id": copy.id,
        "source_point_id": source_id,
        "source_vault": source_vault,
        "resource": job.resource,
        "vault": destination,
        "streams": len(copy.streams),
        "bytes_copied": outcome.bytes_copied,
        "logical_size": stats.logical_size,
        "stored_size": stats.stored_size,
        "new_stored_size": stats.new_stored_size,
        "chunk_count": stats.chunk_count,
        "new_chunk_count": stats.new_chunk_count,
        "move_to_cold_at": move_to_cold_at.isoformat() if move_to_cold_at else None,
        "delete_at": delete_at.isoformat() if delete_at else None,
    }
    return JobResult(
        data=data,
        message=f"copy {copy.id} of {source_id} in vault {destination}",
        record=record,
        discard=lambda: discard_unrecorded(context, destination, copy.id, job.id),
    )

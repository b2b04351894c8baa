"""Compare a vault's recovery points with the catalog's: a point that vanished from the
vault, or appeared in it, without strongroom doing it (issue #12, item 5).

The vault alone cannot show a manifest that was deleted, or one that was brought back
(docs/vault-format.md §1); the catalog, which records every point a job made and every
deletion strongroom performed, can:

- ``point-missing``: the catalog holds the point as AVAILABLE or PARTIAL (and not moved to
  a separate cold store), but the vault has no manifest of that id;
- ``point-resurrected``: the catalog marked the point DELETED (strongroom removes the
  manifest *before* it marks the row), yet the vault has its manifest;
- ``point-unrecorded``: the vault has a manifest a backup job wrote (tag
  ``strongroom:job``) that the catalog has no row for, and that job is not running (a
  running job records its point when it ends).

Explained differences are not findings: an EXPIRED row whose manifest is gone (a deletion
under way), a manifest without a job tag (written by ``strongroom vault backup``, which
records nothing), a point of a job still running.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from strongroom.catalog.models import Job
from strongroom.catalog.points import list_recovery_points
from strongroom.catalog.types import JobState, PointState, Tier
from strongroom.errors import IntegrityError, NotFoundError, UnsupportedError
from strongroom.services.context import AppContext
from strongroom.vault import Problem, RecoveryPointId, Vault, VerifyReport

JOB_TAG: Final = "strongroom:job"
_PRESENT: Final = frozenset({PointState.AVAILABLE, PointState.PARTIAL})
_FINISHED: Final = frozenset(
    {JobState.COMPLETED, JobState.PARTIAL, JobState.FAILED, JobState.ABORTED, JobState.EXPIRED}
)


def audit_points(context: AppContext, vault_name: str, vault: Vault) -> list[Problem]:
    """Return the unexplained differences between the points of ``vault`` (registered as
    ``vault_name``) and the catalog's, as verify problems whose ``kind`` names them.

    Raises catalog and store errors.
    """
    in_vault = {str(point_id) for point_id in vault.point_ids()}
    problems: list[Problem] = []
    with context.catalog.session(readonly=True) as session:
        rows = list_recovery_points(session, vault=vault_name)
        recorded = {row.id for row in rows}
        for row in rows:
            moved_out = row.tier is Tier.COLD and row.cold_point_id is not None
            if row.state in _PRESENT and not moved_out and row.id not in in_vault:
                problems.append(
                    _problem(
                        "point-missing",
                        row.id,
                        f"the catalog holds it as {row.state.value} (created "
                        f"{row.created_at:%Y-%m-%d %H:%M}), but the vault has no manifest of "
                        "it: deleted outside strongroom",
                    )
                )
            elif row.state is PointState.DELETED and row.id in in_vault:
                problems.append(
                    _problem(
                        "point-resurrected",
                        row.id,
                        "strongroom deleted it, yet its manifest is in the vault again",
                    )
                )
        for point_id, job_id in _job_tags(vault, sorted(in_vault - recorded)):
            job = session.get(Job, job_id)
            if job is not None and job.state not in _FINISHED:
                continue  # the job records its point when it ends
            problems.append(
                _problem(
                    "point-unrecorded",
                    point_id,
                    f"backup job {job_id} wrote it, but the catalog has no record of it",
                )
            )
    return problems


def _job_tags(vault: Vault, point_ids: Iterable[str]) -> Iterable[tuple[str, str]]:
    """Yield (point id, job id) for the points a backup job wrote; a manifest that
    cannot be read is verify's to report, not this audit's."""
    ids = [RecoveryPointId(point_id) for point_id in point_ids]
    if not ids:
        return
    try:
        points, _ = vault.load_points(ids)
    except (IntegrityError, UnsupportedError, NotFoundError):
        return
    for point in points:
        job_id = point.tags.get(JOB_TAG)
        if job_id:
            yield point.id, job_id


def _problem(kind: str, point_id: str, message: str) -> Problem:
    return Problem(f"manifests/{point_id}", f"{kind}: recovery point {point_id}: {message}", kind)


def with_problems(report: VerifyReport, problems: list[Problem]) -> VerifyReport:
    """Return ``report`` with ``problems`` added (so that it is not ``ok`` if any)."""
    if not problems:
        return report
    return dataclasses.replace(report, problems=report.problems + tuple(problems))

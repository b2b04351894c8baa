"""Replication lag per copy pair: how far the copies in a vault trail their source.

A *copy pair* is (source vault, resource) → destination vault. The pairs are the ones
declared (every rule's copy actions, for each resource the rule has backed up) and the
ones seen (every recorded copy, whoever started it). For each pair, over the source
points of the resource in the source vault that are not deleted:

- ``newest_source``: the newest of them;
- ``newest_copied``: the newest of them with a copy (not deleted) in the destination;
- ``behind``: how many of them are newer than ``newest_copied`` (all of them when none
  has a copy yet);
- ``lag_seconds``: ``newest_source.created_at - newest_copied.created_at`` (0 when the
  newest is copied; null when nothing is copied yet);
- ``oldest_uncopied_at``: when the oldest of the ``behind`` points was created (null when
  none is behind): how long a point has waited for its copy (the metric and the monitor).

``strongroom report replication-lag`` shows it; the metrics work exports it from
:meth:`ReplicationService.lag`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from strongroom.catalog.models import Job, RecoveryPoint, Resource, Rule, Vault
from strongroom.catalog.types import JobKind, PointState
from strongroom.services.context import AppContext

_LIVE = (PointState.AVAILABLE, PointState.PARTIAL)


@dataclass(frozen=True)
class CopyPairLag:
    """The replication lag of one copy pair (see the module docstring)."""

    source_vault: str
    resource: str
    destination_vault: str
    newest_source_point: str | None
    newest_source_at: datetime | None
    newest_copied_point: str | None
    newest_copied_at: datetime | None
    newest_copy_point: str | None
    behind: int
    lag_seconds: float | None
    oldest_uncopied_at: datetime | None = None

    def waiting_seconds(self, now: datetime) -> float:
        """Return how long the oldest point not yet copied has waited at ``now`` (0 when
        every point up to the newest has its copy)."""
        if self.oldest_uncopied_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_uncopied_at).total_seconds())

    def as_json(self) -> dict[str, Any]:
        """The pair as JSON (times in ISO 8601)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "source_vault": self.source_vault,
            "resource": self.resource,
            "destination_vault": self.destination_vault,
            "newest_source_point": self.newest_source_point,
            "newest_source_at": iso(self.newest_source_at),
            "newest_copied_point": self.newest_copied_point,
            "newest_copied_at": iso(self.newest_copied_at),
            "newest_copy_point": self.newest_copy_point,
            "behind": self.behind,
            "lag_seconds": self.lag_seconds,
            "oldest_uncopied_at": iso(self.oldest_uncopied_at),
        }


Pair = tuple[int, int, int]
"""(source vault id, resource id, destination vault id)."""


def copy_pairs(session: Session) -> set[Pair]:
    """Return the declared and the seen copy pairs (see the module docstring)."""
    pairs: set[Pair] = set()
    for rule in session.scalars(select(Rule)):
        destinations = [str(action.get("destination_vault")) for action in rule.copy_actions]
        if not destinations:
            continue
        vault_ids = list(session.scalars(select(Vault.id).where(Vault.name.in_(destinations))))
        resource_ids = session.scalars(
            select(Job.resource_id)
            .where(Job.rule_id == rule.id, Job.kind == JobKind.BACKUP)
            .where(Job.resource_id.is_not(None))
            .distinct()
        )
        for resource_id in resource_ids:
            if resource_id is not None:
                pairs.update((rule.vault_id, resource_id, vault_id) for vault_id in vault_ids)
    source = aliased(RecoveryPoint)
    # Copies only, as a range of the source_point_id index (SQLite scans the whole table
    # for IS NOT NULL); the state is checked here, since a condition on it makes SQLite
    # walk the (state, …) index of every point instead.
    seen = select(
        source.vault_id, source.resource_id, RecoveryPoint.vault_id, RecoveryPoint.state
    ).join(source, source.id == RecoveryPoint.source_point_id)
    seen = seen.where(RecoveryPoint.source_point_id > "")
    pairs.update((row[0], row[1], row[2]) for row in session.execute(seen) if row[3] in _LIVE)
    return pairs


def pair_lag(session: Session, pair: Pair) -> CopyPairLag:
    """Compute the lag of one copy pair."""
    source_vault_id, resource_id, destination_id = pair
    sources = list(
        session.execute(
            select(RecoveryPoint.id, RecoveryPoint.created_at)
            .where(
                RecoveryPoint.vault_id == source_vault_id,
                RecoveryPoint.resource_id == resource_id,
                RecoveryPoint.state.in_(_LIVE),
            )
            .order_by(RecoveryPoint.created_at.desc(), RecoveryPoint.id)
        )
    )
    copies: dict[str, str] = {}
    if sources:
        rows = session.execute(
            select(RecoveryPoint.source_point_id, RecoveryPoint.id)
            .where(
                RecoveryPoint.vault_id == destination_id,
                RecoveryPoint.state.in_(_LIVE),
                RecoveryPoint.source_point_id.in_([row.id for row in sources]),
            )
            .order_by(RecoveryPoint.created_at)
        )
        copies = {str(row[0]): str(row[1]) for row in rows}
    behind = next((index for index, row in enumerate(sources) if row.id in copies), len(sources))
    newest = sources[0] if sources else None
    copied = sources[behind] if behind < len(sources) else None
    return CopyPairLag(
        source_vault=_name(session, Vault, source_vault_id),
        resource=_name(session, Resource, resource_id),
        destination_vault=_name(session, Vault, destination_id),
        newest_source_point=newest.id if newest else None,
        newest_source_at=newest.created_at if newest else None,
        newest_copied_point=copied.id if copied else None,
        newest_copied_at=copied.created_at if copied else None,
        newest_copy_point=copies[copied.id] if copied else None,
        behind=behind,
        lag_seconds=(newest.created_at - copied.created_at).total_seconds()
        if newest and copied
        else None,
        oldest_uncopied_at=sources[behind - 1].created_at if behind else None,
    )


def _name(session: Session, model: type[Vault] | type[Resource], row_id: int) -> str:
    name = session.scalar(select(model.name).where(model.id == row_id))
    return name if name is not None else f"#{row_id}"


class ReplicationService:
    """Replication lag of every copy pair (``report replication-lag``, metrics)."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def lag(self) -> list[CopyPairLag]:
        """Return the lag of every copy pair, ordered by source vault, resource and
        destination."""
        with self.context.catalog.session(readonly=True) as session:
            found = [pair_lag(session, pair) for pair in copy_pairs(session)]
        return sorted(
            found, key=lambda lag: (lag.source_vault, lag.resource, lag.destination_vault)
        )

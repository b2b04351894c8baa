"""``strongroom catalog rebuild``: recreate the recovery-point rows from the vault manifests.

The vault manifest is the truth about what data exists. For every registered vault (or
one), the vault is opened with its registered key, every manifest is read, and:

- a manifest without a catalog row gets one: resource from the point's
  ``strongroom:resource`` tag (or its metadata's ``source.resource``), job from its
  ``strongroom:job`` tag when that job is in the catalog, lifecycle dates from the rule
  its ``strongroom:rule`` tag (``plan/rule``) names when that rule exists, sizes, tags and
  metadata from the manifest; PARTIAL when the metadata lists ``failed_parts``; a copy
  (metadata ``copy_of``) gets its ``source_point_id`` and the lifecycle of its rule's
  copy action into this vault;
- a row marked DELETED whose manifest exists is made usable again (the data is there);
- a row whose manifest is gone is marked DELETED (counted as *missing*);
- rows that exist are otherwise left alone (verification, restore-test evidence, legal
  holds and lifecycle dates live only in the catalog).

A recovery point row must name a resource (``recovery_points.resource_id`` is NOT NULL),
so a manifest whose resource is not known — no tag (e.g. a ``strongroom vault backup``
without ``--tag strongroom:resource=NAME``), or a resource not registered — is not
recorded; the report lists it with the reason. Register the resource and rebuild again.
A damaged manifest is neither recorded nor taken for missing. Each vault is written in
a transaction of its own; a vault that cannot be opened is reported and the others go on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog.models import Job, RecoveryPoint, Resource, Vault
from strongroom.catalog.points import list_recovery_points, record_recovery_point
from strongroom.catalog.resources import get_resource, get_rule, get_vault, list_vaults
from strongroom.catalog.types import PointState
from strongroom.errors import NotFoundError, StrongroomError
from strongroom.services.context import AppContext
from strongroom.services.vaults.service import VaultService
from strongroom.vault import RecoveryPoint as VaultPoint
from strongroom.vault.copy import COPY_OF_KEY

RESOURCE_TAG: Final = "strongroom:resource"
JOB_TAG: Final = "strongroom:job"
RULE_TAG: Final = "strongroom:rule"


@dataclass
class VaultRebuild:
    """What a rebuild did for one vault."""

    vault: str
    manifests: int = 0
    """Manifests in the vault (readable or not)."""
    recorded: int = 0
    """Rows created from manifests."""
    present: int = 0
    """Rows that were already there."""
    revived: int = 0
    """Rows marked DELETED whose manifest exists: usable again."""
    missing: int = 0
    """Rows whose manifest is gone: marked DELETED."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Manifests not recorded, by point id: why (no resource to attribute them to …)."""
    damaged: dict[str, str] = field(default_factory=dict)
    """Manifests that cannot be read, by point id: why."""
    error: str | None = None
    """Why the vault could not be rebuilt at all."""


@dataclass
class RebuildReport:
    """What a rebuild did, vault by vault."""

    vaults: list[VaultRebuild]

    @property
    def ok(self) -> bool:
        """True when every vault could be opened and read."""
        return all(vault.error is None for vault in self.vaults)

    def totals(self) -> dict[str, int]:
        """The counts summed over the vaults."""
        return {
            "manifests": sum(vault.manifests for vault in self.vaults),
            "recorded": sum(vault.recorded for vault in self.vaults),
            "present": sum(vault.present for vault in self.vaults),
            "revived": sum(vault.revived for vault in self.vaults),
            "missing": sum(vault.missing for vault in self.vaults),
            "skipped": sum(len(vault.skipped) for vault in self.vaults),
            "damaged": sum(len(vault.damaged) for vault in self.vaults),
        }

    def as_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "ok": self.ok,
            "totals": self.totals(),
            "vaults": [asdict(vault) for vault in self.vaults],
        }


def _point_state(point: VaultPoint) -> PointState:
    return PointState.PARTIAL if point.metadata.get("failed_parts") else PointState.AVAILABLE


def _resource_name(point: VaultPoint) -> str | None:
    source = point.metadata.get("source")
    from_metadata = source.get("resource") if isinstance(source, dict) else None
    name = point.tags.get(RESOURCE_TAG) or from_metadata
    return name if isinstance(name, str) and name else None


def _resource(session: Session, point: VaultPoint) -> tuple[Resource | None, str]:
    name = _resource_name(point)
    if name is None:
        return None, (
            f"no {RESOURCE_TAG} tag or source.resource metadata names its resource "
            "(the catalog needs one for every recovery point)"
        )
    try:
        return get_resource(session, name), ""
    except NotFoundError:
        return None, f"resource {name!r} is not registered"


def _source_point_id(point: VaultPoint) -> str | None:
    """The point a copy was made from (its metadata's ``copy_of.point_id``), or None."""
    link = point.metadata.get(COPY_OF_KEY)
    source = link.get("point_id") if isinstance(link, dict) else None
    return source if isinstance(source, str) and source else None


def _lifecycle(session: Session, point: VaultPoint, vault: Vault) -> dict[str, Any]:
    """The lifecycle of the rule the point's ``strongroom:rule`` tag names, or for a copy
    that rule's copy action into ``vault``; empty when there is none."""
    plan, _, rule_name = point.tags.get(RULE_TAG, "").partition("/")
    if not plan or not rule_name:
        return {}
    try:
        rule = get_rule(session, plan, rule_name)
    except NotFoundError:
        return {}
    if _source_point_id(point) is None:
        return dict(rule.lifecycle or {})
    for action in rule.copy_actions:
        if action.get("destination_vault") == vault.name:
            return dict(action.get("lifecycle") or {})
    return {}


def _record(session: Session, vault: Vault, resource: Resource, point: VaultPoint) -> None:
    job_id = point.tags.get(JOB_TAG)
    if job_id is not None and session.get(Job, job_id) is None:
        job_id = None
    move_to_cold_at = delete_at = None
    lifecycle = _lifecycle(session, point, vault)
    if lifecycle:
        if cold := lifecycle.get("move_to_cold_after_days"):
            move_to_cold_at = point.created + timedelta(days=int(cold))
        if delete := lifecycle.get("delete_after_days"):
            delete_at = point.created + timedelta(days=int(delete))
    record_recovery_point(
        session,
        point_id=point.id,
        vault_id=vault.id,
        resource_id=resource.id,
        created_at=point.created,
        job_id=job_id,
        completed_at=point.created,
        logical_size=point.stats.logical_size,
        stored_size=point.stats.stored_size,
        tags=point.tags,
        move_to_cold_at=move_to_cold_at,
        delete_at=delete_at,
        metadata=point.metadata,
        state=_point_state(point),
        source_point_id=_source_point_id(point),
    )


def _write(session: Session, result: VaultRebuild, ids: set[str], points: list[VaultPoint]) -> None:
    vault_row = get_vault(session, result.vault)
    for point in points:
        row = session.get(RecoveryPoint, point.id)
        if row is not None and row.vault_id != vault_row.id:
            result.skipped[point.id] = f"recorded in vault {row.vault.name!r}"
        elif row is not None and row.state == PointState.DELETED:
            row.state = _point_state(point)
            result.revived += 1
        elif row is not None:
            result.present += 1
        else:
            resource, reason = _resource(session, point)
            if resource is None:
                result.skipped[point.id] = reason
            else:
                _record(session, vault_row, resource, point)
                result.recorded += 1
    for row in list_recovery_points(session, vault=result.vault):
        if row.id not in ids and row.state != PointState.DELETED:
            row.state = PointState.DELETED
            result.missing += 1
    session.flush()


class CatalogRebuild:
    """Rebuilds the recovery points of the catalog of one context from its vaults."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.vaults = VaultService(context)

    def rebuild(self, vault: str | None = None) -> RebuildReport:
        """Rebuild every registered vault's points (or vault ``vault``'s); see the module.

        Raises ``NotFoundError`` when ``vault`` is not registered; a vault that cannot be
        opened (its key does not resolve, its store does not answer) is reported in the
        result instead.
        """
        with self.context.catalog.session(readonly=True) as session:
            names = (
                [get_vault(session, vault).name]
                if vault
                else [row.name for row in list_vaults(session)]
            )
        return RebuildReport([self._rebuild_vault(name) for name in names])

    def _rebuild_vault(self, name: str) -> VaultRebuild:
        result = VaultRebuild(name)
        try:
            with self.vaults.open(name) as opened:
                ids = opened.point_ids()
                points, damaged = opened.load_points(ids)
        except StrongroomError as error:
            result.error = error.message
            return result
        result.manifests = len(ids)
        result.damaged = {str(point_id): reason for point_id, reason in damaged.items()}
        with self.context.catalog.session() as session:
            _write(session, result, set(ids), points)
        return result

"""A small world for the retention tests: real local vaults, a SQLite catalog, a manual clock.

Recovery points are written for real (a vault writer through ``VaultService``) and
recorded in the catalog with their lifecycle dates, as a backup job does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from strongroom.catalog import points as catalog_points
from strongroom.catalog import resources as catalog_resources
from strongroom.catalog.events import list_events
from strongroom.catalog.models import EventRecord, RecoveryPoint
from strongroom.config.vaults import VaultConfig
from strongroom.engine.clock import ManualClock
from strongroom.services.context import AppContext
from strongroom.services.vaults.service import VaultService
from tests.support.catalog import T0

DAY = timedelta(days=1)


class World:
    """One home folder with a catalog, vaults under ``root``, and a clock at T0."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = ManualClock(T0)
        self.context = AppContext(home=root / "home", clock=self.clock)
        self.vaults = VaultService(self.context)

    def close(self) -> None:
        self.context.close()

    def vault_config(self, name: str, **settings: Any) -> VaultConfig:
        """The configuration of a local vault ``name`` keyed by a key file."""
        return VaultConfig.model_validate(
            {
                "url": (self.root / "stores" / name).as_uri(),
                "key": {"provider": "key-file", "path": str(self.root / "keys" / name)},
                **settings,
            }
        )

    def add_vault(self, name: str, **settings: Any) -> VaultConfig:
        """Create and register vault ``name`` (``settings``: cold_tier, lock …)."""
        config = self.vault_config(name, **settings)
        self.vaults.initialise(name, config)
        return config

    def cold_url(self, name: str) -> str:
        """A store URL for the separate cold tier of vault ``name``."""
        return (self.root / "stores" / f"{name}-cold").as_uri()

    def backup(
        self,
        vault: str,
        data: bytes = b"select 1;\n" * 1000,
        *,
        resource: str = "orders-db",
        cold_after_days: int | None = None,
        delete_after_days: int | None = None,
    ) -> str:
        """Write a recovery point into ``vault`` now and record it in the catalog."""
        point = self.vaults.backup_streams(
            vault, {"dump.sql": [data]}, metadata={"source": "test"}, tags={"env": "test"}
        )
        now = self.clock.now()
        with self.context.catalog.session() as session:
            resource_row = catalog_resources.upsert_resource(
                session, name=resource, type="postgres", at=now
            )
            vault_row = catalog_resources.get_vault(session, vault)
            catalog_points.record_recovery_point(
                session,
                point_id=point.id,
                vault_id=vault_row.id,
                resource_id=resource_row.id,
                created_at=now,
                completed_at=now,
                move_to_cold_at=now + cold_after_days * DAY if cold_after_days else None,
                delete_at=now + delete_after_days * DAY if delete_after_days else None,
            )
        return point.id

    def advance_to_day(self, day: float) -> datetime:
        """Move the clock to T0 + ``day`` days."""
        self.clock.set(T0 + day * DAY)
        return self.clock.now()

    def point(self, point_id: str) -> RecoveryPoint:
        """The catalog row of a point, as it is now."""
        with self.context.catalog.session(readonly=True) as session:
            point = catalog_points.get_recovery_point(session, point_id)
            session.expunge(point)
            return point

    def vault_point_ids(self, vault: str) -> list[str]:
        """The manifests the vault holds."""
        with self.vaults.open(vault) as opened:
            return list(opened.point_ids())

    def events(self, *types: str) -> list[EventRecord]:
        """The recorded events of these types, oldest first."""
        with self.context.catalog.session(readonly=True) as session:
            found = list_events(session, types=list(types) or None, limit=None)
            for event in found:
                session.expunge(event)
            return found

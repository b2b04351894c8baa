"""A small world for the operations tests: a home with a SQLite catalog, a local vault
keyed by a key file, resources declared through ``services.declare.resources``, and data on disk.

Jobs run for real through ``OperationsService.run`` (an in-process executor on the
system clock); retries use intervals of a few hundredths of a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strongroom.catalog import resources as catalog_resources
from strongroom.config.resources import FilesResource, PostgresResource, SqliteResource
from strongroom.config.vaults import VaultConfig
from strongroom.engine.views import JobView
from strongroom.services.context import AppContext
from strongroom.services.declare.resources import register_resource
from strongroom.services.jobs.operations import OperationsService
from strongroom.services.jobs.views import PointView
from strongroom.services.vaults.service import VaultService

FAST_RETRY = {"interval_seconds": 0.02, "backoff_rate": 1.0}


class Ops:
    """One home folder, vault ``main`` (and more on request), and the operations service."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.context = AppContext(home=root / "home")
        self.vaults = VaultService(self.context)
        self.service = OperationsService(self.context)
        self.add_vault("main")

    def close(self) -> None:
        self.context.close()

    def add_vault(self, name: str) -> None:
        """Create and register a local vault keyed by a key file."""
        config = VaultConfig.model_validate(
            {
                "url": (self.root / "stores" / name).as_uri(),
                "key": {"provider": "key-file", "path": str(self.root / "keys" / name)},
                "chunking": {
                    "min_size_bytes": 16 * 1024,
                    "average_size_bytes": 64 * 1024,
                    "max_size_bytes": 256 * 1024,
                },
            }
        )
        self.vaults.create(name, config)

    def declare(self, name: str, model: Any) -> None:
        """Register resource ``name`` as a config file would declare it."""
        with self.context.catalog.session() as session:
            register_resource(session, name, model, self.context.now())

    def files(self, name: str, *paths: Path) -> None:
        """Declare a files resource over ``paths``."""
        self.declare(name, FilesResource(type="files", paths=[str(path) for path in paths]))

    def sqlite(self, name: str, path: Path) -> None:
        """Declare a sqlite resource."""
        self.declare(name, SqliteResource(type="sqlite", path=str(path)))

    def dead_postgres(self, name: str) -> None:
        """Declare a postgres resource on a port where nothing listens (NetworkError)."""
        self.declare(
            name,
            PostgresResource(type="postgres", host="127.0.0.1", port=9, databases=["nothing"]),
        )

    def rule(
        self,
        plan: str,
        name: str,
        vault: str = "main",
        *,
        selects: tuple[str, ...] = (),
        **settings: Any,
    ) -> str:
        """Create rule ``plan/name`` with catalog settings (lifecycle, tags, retry …); the
        plan selects the resources named in ``selects``."""
        now = self.context.now()
        with self.context.catalog.session() as session:
            plan_row = catalog_resources.upsert_plan(session, name=plan, at=now)
            if selects:
                plan_row.selections = [  # type: ignore[assignment]
                    {"name": "named", "names": list(selects)}
                ]
            vault_row = catalog_resources.get_vault(session, vault)
            catalog_resources.upsert_rule(
                session, plan=plan_row, name=name, vault=vault_row, at=now, **settings
            )
        return f"{plan}/{name}"

    def backup(self, resource: str, **options: Any) -> JobView:
        """Start a backup (vault main unless a rule or vault is given) and run it here."""
        if "rule" not in options:
            options.setdefault("vault", "main")
        job = self.service.start_backup(resource, **options)
        return self.service.run(job.id, poll_interval=0.05)

    def run(self, job: JobView) -> JobView:
        """Run a started job here until it ends."""
        return self.service.run(job.id, poll_interval=0.05)

    def point(self, point_id: str) -> PointView:
        """The catalog's record of a point."""
        return self.service.point(point_id)

    def vault_point_ids(self, vault: str = "main") -> list[str]:
        """The manifests the vault holds."""
        with self.vaults.open(vault) as opened:
            return [str(point_id) for point_id in opened.point_ids()]

    def scratch_left(self) -> list[Path]:
        """What jobs left under HOME/tmp (should be nothing)."""
        folder = self.context.home / "tmp"
        return sorted(folder.iterdir()) if folder.exists() else []

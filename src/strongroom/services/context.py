"""What every service is given: where home is, the catalog (opened on first use), the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.config.home import cache_dir
from strongroom.engine.clock import Clock, SystemClock

if TYPE_CHECKING:
    from strongroom.catalog.database import Catalog


@dataclass
class AppContext:
    """The shared state of one CLI invocation, API process or daemon."""

    home: Path
    catalog_url: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    _catalog: Catalog | None = field(default=None, init=False, repr=False)

    @property
    def catalog(self) -> Catalog:
        """The catalog, opened (and migrated) on first use."""
        if self._catalog is None:
            from strongroom.catalog.database import open_catalog  # SQLAlchemy loads on first use

            self._catalog = open_catalog(self.catalog_url, self.home)
        return self._catalog

    @property
    def cache_dir(self) -> Path:
        """Where local caches (vault indexes, file caches, key-derivation hints) live."""
        return cache_dir(self.home)

    def now(self) -> datetime:
        """The current time from the context's clock (aware, UTC)."""
        return self.clock.now()

    def close(self) -> None:
        """Close the catalog if it was opened."""
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

"""What every service is given: where home is, the catalog (opened on first use), the clock,
and who is acting (recorded in the audit trail)."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.config.home import cache_dir
from strongroom.engine.clock import Clock, SystemClock

if TYPE_CHECKING:
    from strongroom.catalog.database import Catalog


@dataclass(frozen=True)
class Actor:
    """Who asks for an operation and from where, as the audit trail records it.

    ``name`` is ``user@host`` for the CLI and the daemon, the authenticated principal for
    the API; ``origin`` says from where (``cli on HOST pid N``, a client address).
    """

    name: str
    origin: str


def local_actor(via: str = "cli") -> Actor:
    """Return the local user as an actor: ``user@host``, origin ``VIA on HOST pid N``."""
    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (containers): keep the number
        user = f"uid{os.getuid()}"
    return Actor(name=f"{user}@{host}", origin=f"{via} on {host} pid {os.getpid()}")


@dataclass
class AppContext:
    """The shared state of one CLI invocation, API process or daemon."""

    home: Path
    catalog_url: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    actor: Actor = field(default_factory=local_actor)
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

    def acting_as(self, actor: Actor) -> AppContext:
        """Return a context for ``actor`` sharing this one's home, clock and open catalog
        (an API request builds one per principal)."""
        other = AppContext(
            home=self.home, catalog_url=self.catalog_url, clock=self.clock, actor=actor
        )
        other._catalog = self.catalog  # shared: close this context, not the other one
        return other

    def close(self) -> None:
        """Close the catalog if it was opened."""
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

"""Exclusive leadership of the scheduler, through a lease row in the catalog.

Any number of daemons may share a catalog and run jobs (claims are serialised there),
but only the holder of the ``scheduler`` lease fires rules. The holder renews the lease
every tick; a holder that stops renewing (crash, lost network, SIGKILL) loses it when it
expires, and a standby daemon takes over at its next tick. A daemon that stops cleanly
releases the lease at once.

Double firing is impossible even without the lease (each firing advances the rule's
fire state with a conditional update, see ``catalog.schedules``); the lease keeps the
work in one place and lets a second daemon say clearly why it is not scheduling.
A PostgreSQL advisory lock is deliberately not used on top: a session-level lock needs
a connection pinned for the daemon's life, and a dropped connection releases it without
the daemon noticing, which the lease row (visible, with its holder and expiry) avoids.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from strongroom.catalog import Catalog
from strongroom.catalog import leases as catalog_leases
from strongroom.catalog.models import Lease
from strongroom.engine.clock import Clock
from strongroom.logs import get_logger

SCHEDULER_LEASE: Final = "scheduler"
"""The name of the scheduler's leadership lease."""
DEFAULT_LEADER_LEASE_SECONDS: Final = 60.0
"""How long leadership holds without renewal."""

_logger = get_logger(__name__)


@dataclass(frozen=True)
class LeaseView:
    """A lease as stored: who holds it, since when, until when."""

    name: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime


def lease_view(row: Lease) -> LeaseView:
    """Snapshot a lease row."""
    return LeaseView(row.name, row.holder, row.acquired_at, row.renewed_at, row.expires_at)


def default_holder() -> str:
    """A name for this process that says where it runs: ``host/pid/random``."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


class Leadership:
    """Takes, renews and releases one named lease for this process."""

    def __init__(
        self,
        catalog: Catalog,
        clock: Clock,
        *,
        name: str = SCHEDULER_LEASE,
        holder: str | None = None,
        lease_seconds: float = DEFAULT_LEADER_LEASE_SECONDS,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.catalog = catalog
        self.clock = clock
        self.name = name
        self.holder = holder or default_holder()
        self.lease_seconds = lease_seconds
        self.current: LeaseView | None = None
        self._held = False

    @property
    def held(self) -> bool:
        """True if the last :meth:`acquire` found this process holding the lease."""
        return self._held

    def acquire(self) -> bool:
        """Take the lease, or renew it if held; return True if this process holds it now."""
        with self.catalog.session() as session:
            self.current = lease_view(
                catalog_leases.acquire_lease(
                    session,
                    self.name,
                    holder=self.holder,
                    now=self.clock.now(),
                    seconds=self.lease_seconds,
                )
            )
        held = self.current.holder == self.holder
        if held and not self._held:
            _logger.info("took the %s lease", self.name, extra={"holder": self.holder})
        elif self._held and not held:
            _logger.warning(
                "lost the %s lease to %s",
                self.name,
                self.current.holder,
                extra={"holder": self.holder},
            )
        self._held = held
        return held

    def release(self) -> bool:
        """Give the lease up at once if held; return True if it was."""
        if not self._held:
            return False
        with self.catalog.session() as session:
            released = catalog_leases.release_lease(
                session, self.name, holder=self.holder, now=self.clock.now()
            )
        self._held = False
        if released:
            _logger.info("released the %s lease", self.name, extra={"holder": self.holder})
        return released

    def describe_other(self) -> str:
        """Say who else holds the lease, for a message to the user."""
        lease = self.current
        if lease is None or lease.holder == self.holder:
            return f"nobody else holds the {self.name} lease"
        return (
            f"{lease.holder} holds the {self.name} lease "
            f"(since {lease.acquired_at.isoformat()}, renewed until {lease.expires_at.isoformat()})"
        )

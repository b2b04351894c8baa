"""Named leases: at most one holder at a time, until the lease expires or is released.

The scheduler's leadership is the lease ``scheduler``. Taking and renewing are one
conditional update (``WHERE name = ? AND (holder = me OR expires_at <= now)``), and a
first holder inserts the row; on both SQLite and PostgreSQL two processes that try at
once cannot both come out holding it. Times are the callers' clocks, so machines that
share a catalog need synchronised clocks (NTP); the lease length covers small drift.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, literal, or_, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from strongroom.catalog.jobs import _rowcount as rowcount
from strongroom.catalog.models import Lease
from strongroom.catalog.types import UTCDateTime


def acquire_lease(
    session: Session, name: str, *, holder: str, now: datetime, seconds: float
) -> Lease:
    """Take or renew the lease ``name`` for ``holder`` unless someone else holds it.

    Returns the lease as it stands afterwards: ``lease.holder == holder`` tells whether
    the caller holds it (until ``expires_at``).
    """
    expires_at = now + timedelta(seconds=seconds)
    statement = (
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
        .values(
            holder=holder,
            acquired_at=case(
                (Lease.holder == holder, Lease.acquired_at),
                else_=literal(now, UTCDateTime()),
            ),
            renewed_at=now,
            expires_at=expires_at,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(session.execute(statement)) == 0 and get_lease(session, name) is None:
        try:
            with session.begin_nested():
                session.add(
                    Lease(
                        name=name,
                        holder=holder,
                        acquired_at=now,
                        renewed_at=now,
                        expires_at=expires_at,
                    )
                )
        except sa_exc.IntegrityError:
            pass  # another process inserted it first: it holds the lease
    lease = get_lease(session, name)
    if lease is None:  # pragma: no cover - the row was just written or read
        raise RuntimeError(f"lease {name!r} vanished while being taken")
    return lease


def release_lease(session: Session, name: str, *, holder: str, now: datetime) -> bool:
    """Give the lease up at once if ``holder`` holds it; True if it did."""
    statement = (
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder, Lease.expires_at > now)
        .values(expires_at=now, renewed_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(session.execute(statement)) == 1


def get_lease(session: Session, name: str) -> Lease | None:
    """Return the lease ``name`` as stored (whoever holds it, expired or not), or ``None``."""
    return session.get(Lease, name, populate_existing=True)

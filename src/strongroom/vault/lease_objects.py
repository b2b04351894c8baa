"""Vault lease objects: their settings, their sealed JSON document, and what a reader
learns from one (docs/vault-format.md §13.2). :mod:`strongroom.vault.leases` takes, renews
and removes them.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from strongroom.errors import ConfigError
from strongroom.keys import parse_aware_time
from strongroom.vault.lease_protocol import LeaseKind, LeaseState

LEASE_FORMAT: Final = "strongroom-lock"
"""The payload's ``format`` field (its format-1 value, kept for compatibility)."""
LEASE_VERSION: Final = 1
MAX_LEASE_BYTES: Final = 64 * 1024
_NAME = re.compile(r"locks/(shared|exclusive)-([0-9a-f]{32})")


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """How leases behave.

    ``lease``: how long a lease stays live without a renewal (default 5 minutes);
    ``refresh``: how often a holder renews it (default a third of the lease; it must be
    under half); ``clock_skew``: how far clocks of hosts sharing the vault may disagree,
    added to every lease before calling it stale (default 1 minute); ``wait``: how long
    acquiring keeps retrying while a conflicting live lease exists (default 0: fail at
    once with ``ConflictError``); ``listing_delay``: how long the store's listings may lag
    behind a put or delete (default 0, right for local folders, memory and S3 today);
    ``clock``: the time source (tests replace it).
    """

    lease: timedelta = timedelta(minutes=5)
    refresh: timedelta | None = None
    clock_skew: timedelta = timedelta(minutes=1)
    wait: timedelta = timedelta(0)
    listing_delay: timedelta = timedelta(0)
    clock: Callable[[], datetime] = field(default=utc_now, compare=False)

    def __post_init__(self) -> None:
        if self.lease < timedelta(seconds=1):
            raise ConfigError(f"a vault lease must last at least 1 s, not {self.lease}")
        if not timedelta(0) < self.refresh_interval < self.lease / 2:
            raise ConfigError(f"lease refresh {self.refresh} must be under half the lease")
        if min(self.clock_skew, self.wait, self.listing_delay) < timedelta(0):
            raise ConfigError("clock_skew, wait and listing_delay must not be negative")
        if self.listing_delay >= self.refresh_interval:
            raise ConfigError(
                f"listing_delay {self.listing_delay} must be under the refresh interval"
            )

    @property
    def refresh_interval(self) -> timedelta:
        """How often a holder renews its lease."""
        return self.refresh if self.refresh is not None else self.lease / 3

    @property
    def damaged_after(self) -> timedelta:
        """How long a damaged lease object must have existed before it counts as stale."""
        return self.lease + self.clock_skew


class LeaseDocument(BaseModel):
    """The JSON payload of a lease object."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal["strongroom-lock"] = LEASE_FORMAT
    version: int = Field(default=LEASE_VERSION, ge=1, le=LEASE_VERSION)
    vault_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    kind: LeaseKind
    purpose: str = Field(max_length=64)
    holder: str = Field(pattern=r"^[0-9a-f]{32}$")
    host: str = Field(max_length=255)
    pid: int = Field(ge=1)
    machine: str = Field(max_length=512)
    created: str
    written: str
    expires: str

    @field_validator("created", "written", "expires")
    @classmethod
    def _aware(cls, value: str) -> str:
        parse_aware_time(value)
        return value


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """One lease object as read from the store.

    ``holder`` is a random id per holder (constant across renewals); ``machine``
    identifies one boot of one machine and PID namespace (empty where unknown), so a
    holder on this machine whose process is gone is recognised at once.
    """

    name: str
    kind: LeaseKind
    purpose: str
    holder: str
    host: str
    pid: int
    machine: str
    created: datetime
    written: datetime
    expires: datetime

    def stale_reason(self, now: datetime, clock_skew: timedelta) -> str | None:
        """Return why this lease is stale at ``now`` (observer's clock), or None if live.

        Stale: it ended more than ``clock_skew`` ago, or it was taken on this machine
        (same boot, same PID namespace) by a process that no longer exists.
        """
        if now > self.expires + clock_skew:
            return f"its lease ended at {self.expires.isoformat()}"
        here = machine_identity()
        same_machine = bool(here) and self.machine == here and self.host == host_name()
        if same_machine and not _process_exists(self.pid):
            return f"its process {self.pid} on this machine is gone"
        return None

    def describe(self) -> str:
        """Return a one-line description for messages."""
        return (
            f"{self.kind} lease {self.name} ({self.purpose}) held by pid {self.pid} on "
            f"{self.host} since {self.created.isoformat()}, until {self.expires.isoformat()}"
        )


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """One lease object as an operator sees it (``strongroom vault leases``).

    ``state``: ``live``, ``stale`` (may be removed) or ``damaged`` (unreadable; counts as
    live until it is older than a lease plus the clock-skew allowance, then stale).
    ``info`` is None for a damaged object; ``age`` is how long it has existed (a lower
    bound: since its holder took the lease, or for a damaged object since it was first
    seen). ``reason`` says why it is stale or damaged.
    """

    name: str
    kind: LeaseKind
    state: LeaseState
    age: timedelta
    info: LeaseInfo | None
    reason: str


def lease_kind_of(name: str) -> LeaseKind | None:
    """Return the kind a lease object name carries, or None for other names."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return "shared" if match.group(1) == "shared" else "exclusive"


@functools.cache
def host_name() -> str:
    """Return this machine's host name (at most 255 characters)."""
    return socket.gethostname()[:255]


@functools.cache
def machine_identity() -> str:
    """Return ``<boot id>/<pid namespace>`` on Linux, else the empty string."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = str(Path("/proc/self/ns/pid").readlink())
    except (OSError, UnicodeDecodeError):
        return ""
    return f"{boot}/{namespace}"[:512] if boot and namespace else ""


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True  # cannot tell: assume alive (never call a live lease stale)
    return True

"""Vault leases: shared for writers, exclusive for GC and index repair.

Not to be confused with a vault's *retention lock* (``strongroom vault lock``, min/max
retention, services/vault_lock.py): a lease only keeps the operations that delete (GC,
index repair) away from writers while they run, and ends by itself when its holder dies.

A lease object is a sealed ``locks/<kind>-<32 hex>`` object (docs/vault-format.md §13;
the prefix keeps its format-1 name) naming its holder and when its lease ends. The
protocol (acquire, renew without a gap, scan, confirm before acting) lives without input
or output in :mod:`strongroom.vault.lease_protocol`; this module runs it against a blob
store, reads and writes the objects, and keeps a held lease renewed from a background
thread.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Generator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from strongroom.errors import (
    BusyError,
    ChangedMeanwhileError,
    ConfigError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    StrongroomError,
    UnsupportedError,
)
from strongroom.keys import parse_aware_time
from strongroom.logs import get_logger
from strongroom.storage.base import BlobStore
from strongroom.vault import lease_protocol as protocol
from strongroom.vault.crypto import open_sealed, seal
from strongroom.vault.format import LEASES_PREFIX, MAGIC_LEASE, validation_message
from strongroom.vault.gc_state import ObjectAges
from strongroom.vault.keyring import Keyring
from strongroom.vault.lease_objects import (
    MAX_LEASE_BYTES,
    LeaseDocument,
    LeaseInfo,
    LeaseSettings,
    LeaseStatus,
    host_name,
    lease_kind_of,
    machine_identity,
)
from strongroom.vault.lease_protocol import LeaseKind, LeaseState, LeaseView

__all__ = [
    "HeldLease",
    "LeaseInfo",
    "LeaseKind",
    "LeaseSettings",
    "LeaseStatus",
    "VaultLeases",
    "host_name",
    "lease_kind_of",
]

_T = TypeVar("_T")
_log = get_logger(__name__)


class VaultLeases:
    """Reads, takes and removes the leases of one vault.

    ``ages_path``: a SQLite file recording when this machine first saw each damaged
    lease object (None: in memory), so a damaged object ages out on stores that keep no
    timestamps.
    """

    def __init__(
        self,
        store: BlobStore,
        keyring: Keyring,
        vault_id: str,
        settings: LeaseSettings | None = None,
        ages_path: Path | None = None,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.vault_id = vault_id
        self.settings = settings or LeaseSettings()
        self._ages_path = ages_path

    def now(self) -> datetime:
        """Return the current time of the settings' clock."""
        return self.settings.clock()

    def read(self, name: str) -> LeaseInfo:
        """Read and open lease object ``name``.

        Raises ``NotFoundError`` if it is gone, ``IntegrityError`` if it is damaged or
        foreign and ``UnsupportedError`` for a newer format.
        """
        kind = lease_kind_of(name)
        if kind is None:
            raise IntegrityError(f"{name} is not a lease object name")
        data = self.store.get(name)
        if len(data) > MAX_LEASE_BYTES:
            raise IntegrityError(f"{name} is larger than any lease object")
        _, payload = open_sealed(
            data, MAGIC_LEASE, self.keyring.data_key, name, context=name.encode("ascii")
        )
        try:
            document = LeaseDocument.model_validate_json(payload)
        except ValidationError as exc:
            raise IntegrityError(f"{name} is malformed: {validation_message(exc)}") from exc
        if document.vault_id != self.vault_id or document.kind != kind:
            raise IntegrityError(f"{name} belongs to another vault or lease kind")
        return LeaseInfo(
            name=name,
            kind=document.kind,
            purpose=document.purpose,
            holder=document.holder,
            host=document.host,
            pid=document.pid,
            machine=document.machine,
            created=parse_aware_time(document.created),
            written=parse_aware_time(document.written),
            expires=parse_aware_time(document.expires),
        )

    def status(self, name: str) -> LeaseStatus | None:
        """Return the state of lease object ``name``, or None if it is gone."""
        kind = lease_kind_of(name)
        if kind is None:
            raise ConfigError(f"{name!r} is not a lease object name (locks/<kind>-<32 hex>)")
        now = self.now()
        try:
            info = self.read(name)
        except NotFoundError:
            return None
        except (IntegrityError, UnsupportedError) as exc:
            age = self._damaged_age(name)
            if age > self.settings.damaged_after:
                aged = f"damaged ({exc}) and older than {_duration(self.settings.damaged_after)}"
                return LeaseStatus(name, kind, "stale", age, None, aged)
            return LeaseStatus(name, kind, "damaged", age, None, str(exc))
        reason = info.stale_reason(now, self.settings.clock_skew)
        state: LeaseState = "live" if reason is None else "stale"
        return LeaseStatus(
            name, kind, state, max(now - info.created, timedelta(0)), info, reason or ""
        )

    def statuses(self) -> list[LeaseStatus]:
        """Return every lease object's state, oldest first."""
        found = [status for name in self._names() if (status := self.status(name)) is not None]
        found.sort(key=lambda status: (-status.age, status.name))
        return found

    def remove_stale(self, *, damaged: bool = True) -> list[LeaseStatus]:
        """Remove the stale lease objects and (with ``damaged``) the damaged ones, which
        may be the last word of a holder that died; return what was removed. Live ones
        stay. A live holder whose damaged object was removed stops at its next renewal.
        """
        removed = []
        for status in self.statuses():
            if status.state == "stale" or (damaged and status.state == "damaged"):
                self.store.delete(status.name)
                _log.warning("removed %s lease %s: %s", status.state, status.name, status.reason)
                removed.append(status)
        return removed

    def break_lease(self, name: str) -> None:
        """Remove lease object ``name`` whatever its state (an operator's decision).

        Raises ``ConfigError`` for a name that is not a lease object's. Removing a live
        lease lets a conflicting operation start; its holder notices at its next renewal
        and stops.
        """
        if lease_kind_of(name) is None:
            raise ConfigError(f"{name!r} is not a lease object name (locks/<kind>-<32 hex>)")
        self.store.delete(name)
        _log.warning("removed lease %s on request", name)

    def acquire(self, kind: LeaseKind, purpose: str) -> HeldLease:
        """Take a lease of ``kind`` for ``purpose`` and start renewing it.

        Shared leases conflict only with live (or damaged) exclusive ones; an exclusive
        lease conflicts with every other live or damaged one. Stale conflicting leases
        met on the way are removed. Retries for up to ``settings.wait``, then raises
        ``ConflictError`` (retryable) naming the holders; raises store errors as they
        come.
        """
        deadline = time.monotonic() + self.settings.wait.total_seconds()
        delay = 0.05
        while True:
            held = HeldLease(self, kind, purpose)
            conflicts = held.run(protocol.acquire(held.holding))
            if not conflicts:
                held.start()
                return held
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BusyError(
                    f"the vault is busy: {'; '.join(conflicts)}",
                    hint=_busy_hint(kind, self.settings),
                )
            time.sleep(min(remaining, delay))
            delay = min(delay * 2, 2.0)

    def perform(self, held: HeldLease, operation: protocol.Operation) -> Any:
        """Carry out one protocol operation for ``held`` and return its result."""
        match operation:
            case protocol.WriteLease():
                return held.write()
            case protocol.ListLeases():
                return tuple(self._names())
            case protocol.ReadLease(name=name):
                return self._view(name)
            case protocol.LeaseExists(name=name):
                try:
                    self.store.stat(name)
                except NotFoundError:
                    return False
                return True
            case protocol.DeleteLease(name=name):
                try:
                    self.store.delete(name)
                except StrongroomError as exc:
                    _log.warning("could not remove lease object %s: %s", name, exc)
                return None
            case protocol.CheckFresh():
                return held.fresh()
            case protocol.Settle():
                time.sleep(self.settings.listing_delay.total_seconds())
                return None
            case protocol.Pause(attempt=attempt):
                time.sleep(min(0.01 * 2**attempt, 0.5))
                return None
        raise AssertionError(f"unknown lease operation {operation!r}")

    def _view(self, name: str) -> LeaseView | None:
        status = self.status(name)
        if status is None:
            return None
        if status.info is None:
            return LeaseView(
                name,
                status.kind,
                "",
                status.state,
                f"damaged lease object {name} ({status.reason})",
            )
        return LeaseView(
            name, status.kind, status.info.holder, status.state, status.info.describe()
        )

    def _damaged_age(self, name: str) -> timedelta:
        ages = ObjectAges(self.store, self._ages_path, self.settings.clock)
        try:
            ages.note([name])
            return ages.age(name)
        finally:
            ages.close()

    def _names(self) -> list[str]:
        return [info.name for info in self.store.list(LEASES_PREFIX) if lease_kind_of(info.name)]


def _busy_hint(kind: LeaseKind, settings: LeaseSettings) -> str:
    waiting_for = "a GC or index repair" if kind == "shared" else "the backups and GC named"
    return (
        f"Wait for {waiting_for} to finish. A lease whose holder died goes stale when it "
        f"ends ({_duration(settings.lease)} after its last renewal), a damaged one "
        f"{_duration(settings.damaged_after)} after it was first seen; 'strongroom vault leases' "
        "lists them and 'strongroom vault clear-stale-leases' removes stale and damaged ones."
    )


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


class HeldLease:
    """A lease this process holds; renewed by a background thread until released."""

    def __init__(self, leases: VaultLeases, kind: LeaseKind, purpose: str) -> None:
        self._leases = leases
        self._settings = leases.settings
        self.kind: LeaseKind = kind
        self.purpose = purpose
        self.holding = protocol.Holding(kind, secrets.token_hex(16))
        self._created = leases.now()
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._released = False
        self._renewed = (time.monotonic(), time.time())
        self._written = self._renewed

    @property
    def holder(self) -> str:
        """This holder's random id (the same in all its lease objects)."""
        return self.holding.holder

    @property
    def name(self) -> str:
        """The current lease object (a renewal replaces it)."""
        return self.holding.name

    @property
    def stale_removed(self) -> int:
        """Stale lease objects removed while acquiring and holding this lease."""
        return len(self.holding.stale_removed)

    @property
    def lost(self) -> bool:
        """True once the lease was found removed (by someone who judged it stale)."""
        return self.holding.lost is not None

    def check(self) -> None:
        """Raise ``ConflictError`` if the lease was lost."""
        if self.holding.lost is not None:
            raise protocol.lost_error(self.holding)

    def run(self, steps: Generator[protocol.Operation, Any, _T]) -> _T:
        """Run protocol ``steps`` against the store, sending each result back (and each
        store error in, so the steps can clean up); returns their outcome."""
        result: Any = None
        error: BaseException | None = None
        while True:
            try:
                operation = steps.throw(error) if error is not None else steps.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result, error = self._leases.perform(self, operation), None
            except BaseException as exc:  # noqa: BLE001 - handed to the steps, which re-raise it
                result, error = None, exc

    def refresh(self) -> None:
        """Renew the lease without a gap (:func:`~strongroom.vault.lease_protocol.renew`).

        Raises ``ConflictError`` (and marks the lease lost) if the old object is gone: a
        holder that was judged stale must stop, whatever happened meanwhile. Raises
        store errors as they come (the old object then stays the lease).
        """
        with self._mutex:
            self.check()
            if self._released:
                raise ChangedMeanwhileError("this vault lease was released")
            try:
                self.run(protocol.renew(self.holding))
            except ConflictError:
                if self.lost:
                    _log.error("vault lease lost: %s", self.holding.lost)
                raise
            self._renewed = (time.monotonic(), time.time())

    def confirm(self) -> None:
        """Check that no conflicting lease shows
        (:func:`~strongroom.vault.lease_protocol.confirm`), then renew the lease (which
        checks that it was not lost): a GC calls this before each phase that deletes, a
        writer before it puts its manifest. The renewal comes last, so that the time
        between the last check and the action is as short as it can be. Raises
        ``ConflictError`` if the lease was lost or a conflicting one appeared."""
        with self._mutex:
            self.check()
            self.run(protocol.confirm(self.holding))
        self.refresh()

    def ensure_fresh(self) -> None:
        """Renew now unless the last renewal is younger than the refresh interval (by
        both the monotonic and the wall clock, so a suspended process renews, and so
        checks, before it acts). Raises like :meth:`refresh`."""
        self.check()
        interval = self._settings.refresh_interval.total_seconds()
        monotonic, wall = self._renewed
        if time.monotonic() - monotonic >= interval or abs(time.time() - wall) >= interval:
            self.refresh()

    def start(self) -> None:
        """Start the background renewer (daemon thread)."""
        self._thread = threading.Thread(
            target=self._renew_in_background, name=f"vault-lease-{self.kind}", daemon=True
        )
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and delete the lease object (best effort). Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._mutex:
            if self._released:
                return
            self._released = True
            if self.holding.lost is None and self.holding.name:
                self._leases.perform(self, protocol.DeleteLease(self.holding.name))

    def fresh(self) -> bool:
        """Tell whether the newest lease object was written less than half a lease ago
        (by both the monotonic and the wall clock)."""
        limit = self._settings.lease.total_seconds() / 2
        monotonic, wall = self._written
        return time.monotonic() - monotonic < limit and abs(time.time() - wall) < limit

    def write(self) -> str:
        """Put a fresh lease object (create-exclusive) and return its name."""
        leases = self._leases
        self._written = (time.monotonic(), time.time())
        now = leases.now()
        document = LeaseDocument(
            vault_id=leases.vault_id,
            kind=self.kind,
            purpose=self.purpose[:64],
            holder=self.holder,
            host=host_name(),
            pid=os.getpid(),
            machine=machine_identity(),
            created=self._created.isoformat(),
            written=now.isoformat(),
            expires=(now + self._settings.lease).isoformat(),
        )
        keys = leases.keyring.current()
        for attempt in range(3):
            name = f"{LEASES_PREFIX}{self.kind}-{secrets.token_hex(16)}"
            blob = seal(
                MAGIC_LEASE,
                keys.generation,
                keys.data_key,
                document.model_dump_json().encode("utf-8"),
                context=name.encode("ascii"),
                compress_level=None,
            )
            try:
                leases.store.put(name, blob, exclusive=True)
            except ConflictError:
                if attempt == 2:
                    raise
                continue  # 128 random bits collided: take another name
            return name
        raise AssertionError("unreachable")

    def _renew_in_background(self) -> None:
        interval = self._settings.refresh_interval.total_seconds()
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except ConflictError:
                if self.lost:
                    return
            except StrongroomError as exc:
                _log.warning("could not renew vault lease %s: %s", self.name, exc)

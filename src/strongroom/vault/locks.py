"""Vault locks with leases: shared for writers, exclusive for GC and index repair.

A lock is a sealed ``locks/<kind>-<32 hex>`` object (docs/vault-format.md §13) naming its
holder and when its lease ends. Object stores have no compare-and-swap across objects,
so acquiring follows restic: write your own lock first, then list the others and back
off if a conflicting live one exists. Both sides check after writing, so two conflicting
holders can never both proceed (each listing happens after the other's write, or the
other's listing happens after this write).

A holder keeps its lease alive from a background thread. A refresh writes a *new* lock
object, checks that the old one still exists and only then deletes it: if someone judged
the old lock stale and removed it, the holder learns so instead of silently recreating
it, and stops (see :meth:`HeldLock.refresh`).
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
from strongroom.vault.crypto import open_sealed, seal
from strongroom.vault.format import LOCKS_PREFIX, MAGIC_LOCK, validation_message
from strongroom.vault.keyring import Keyring

LockKind = Literal["shared", "exclusive"]
LOCK_FORMAT: Final = "strongroom-lock"
LOCK_VERSION: Final = 1
MAX_LOCK_BYTES: Final = 64 * 1024
MAX_CLEANUP_ROUNDS: Final = 8
_NAME = re.compile(r"locks/(shared|exclusive)-([0-9a-f]{32})")
_log = get_logger(__name__)


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LockSettings:
    """How locks behave.

    ``lease``: how long a lock stays live without a refresh (default 5 minutes);
    ``refresh``: how often a holder renews it (default a third of the lease; it must be
    under half); ``clock_skew``: how far clocks of hosts sharing the vault may disagree,
    added to every lease before calling a lock stale (default 1 minute); ``wait``: how
    long acquiring keeps retrying while a conflicting live lock exists (default 0: fail at
    once with ``BusyError``); ``clock``: the time source (tests replace it).
    """

    lease: timedelta = timedelta(minutes=5)
    refresh: timedelta | None = None
    clock_skew: timedelta = timedelta(minutes=1)
    wait: timedelta = timedelta(0)
    clock: Callable[[], datetime] = field(default=utc_now, compare=False)

    def __post_init__(self) -> None:
        if self.lease < timedelta(seconds=1):
            raise ConfigError(f"a lock lease must be at least 1 s, not {self.lease}")
        if not timedelta(0) < self.refresh_interval < self.lease / 2:
            raise ConfigError(f"lock refresh {self.refresh} must be under half the lease")
        if self.clock_skew < timedelta(0) or self.wait < timedelta(0):
            raise ConfigError("clock_skew and wait must not be negative")

    @property
    def refresh_interval(self) -> timedelta:
        """How often a holder renews its lease."""
        return self.refresh if self.refresh is not None else self.lease / 3


class _LockDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal["strongroom-lock"] = LOCK_FORMAT
    version: int = Field(default=LOCK_VERSION, ge=1, le=LOCK_VERSION)
    vault_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    kind: LockKind
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
class LockInfo:
    """One lock object as read from the store.

    ``holder`` is a random id per holder (constant across refreshes); ``machine``
    identifies one boot of one machine and PID namespace (empty where unknown), so a
    holder on this machine whose process is gone is recognised at once.
    """

    name: str
    kind: LockKind
    purpose: str
    holder: str
    host: str
    pid: int
    machine: str
    created: datetime
    written: datetime
    expires: datetime

    def stale_reason(self, now: datetime, clock_skew: timedelta) -> str | None:
        """Return why this lock is stale at ``now`` (observer's clock), or None if live.

        Stale: its lease ended more than ``clock_skew`` ago, or it was taken on this
        machine (same boot, same PID namespace) by a process that no longer exists.
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
            f"{self.kind} lock {self.name} ({self.purpose}) held by pid {self.pid} on "
            f"{self.host} since {self.created.isoformat()}, lease until {self.expires.isoformat()}"
        )


def lock_kind_of(name: str) -> LockKind | None:
    """Return the kind a ``locks/`` object name carries, or None for other names."""
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
        return True  # cannot tell: assume alive (never call a live lock stale)
    return True


class VaultLocks:
    """Reads, takes and removes the locks of one vault."""

    def __init__(
        self,
        store: BlobStore,
        keyring: Keyring,
        vault_id: str,
        settings: LockSettings | None = None,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.vault_id = vault_id
        self.settings = settings or LockSettings()

    def now(self) -> datetime:
        """Return the current time of the settings' clock."""
        return self.settings.clock()

    def read(self, name: str) -> LockInfo:
        """Read and open lock object ``name``.

        Raises ``NotFoundError`` if it is gone, ``IntegrityError`` if it is damaged or
        foreign and ``UnsupportedError`` for a newer format.
        """
        kind = lock_kind_of(name)
        if kind is None:
            raise IntegrityError(f"{name} is not a lock name")
        data = self.store.get(name)
        if len(data) > MAX_LOCK_BYTES:
            raise IntegrityError(f"{name} is larger than any lock")
        _, payload = open_sealed(
            data, MAGIC_LOCK, self.keyring.data_key, name, context=name.encode("ascii")
        )
        try:
            document = _LockDocument.model_validate_json(payload)
        except ValidationError as exc:
            raise IntegrityError(f"{name} is malformed: {validation_message(exc)}") from exc
        if document.vault_id != self.vault_id or document.kind != kind:
            raise IntegrityError(f"{name} belongs to another vault or lock kind")
        return LockInfo(
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

    def list_locks(self) -> tuple[list[LockInfo], dict[str, str]]:
        """Return the readable locks (oldest first) and, by name, why others are not."""
        locks: list[LockInfo] = []
        unreadable: dict[str, str] = {}
        for name in self._names():
            try:
                locks.append(self.read(name))
            except NotFoundError:
                continue
            except (IntegrityError, UnsupportedError) as exc:
                unreadable[name] = str(exc)
        locks.sort(key=lambda lock: (lock.created, lock.name))
        return locks, unreadable

    def break_lock(self, name: str) -> None:
        """Remove lock object ``name`` whatever its state (an operator's decision).

        Raises ``ConfigError`` for a name that is not a lock's. Removing a live lock lets a
        conflicting operation start; its holder notices at its next refresh and stops.
        """
        if lock_kind_of(name) is None:
            raise ConfigError(f"{name!r} is not a lock name (locks/<kind>-<32 hex>)")
        self.store.delete(name)
        _log.warning("removed lock %s on request", name)

    def acquire(self, kind: LockKind, purpose: str) -> HeldLock:
        """Take a lock of ``kind`` for ``purpose`` and start refreshing it.

        Shared locks conflict only with live exclusive locks; an exclusive lock conflicts
        with every other live (or unreadable) lock. Stale conflicting locks met on the way
        are removed. Retries for up to ``settings.wait``, then raises ``BusyError``
        (retryable) naming the holders; raises store errors as they come.
        """
        deadline = time.monotonic() + self.settings.wait.total_seconds()
        delay = 0.05
        while True:
            held = HeldLock(self, kind, purpose)
            try:
                conflicts = self._conflicts(held)
            except BaseException:
                held.release()
                raise
            if not conflicts:
                held.start()
                return held
            held.release()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BusyError(
                    f"the vault is locked: {'; '.join(conflicts)}",
                    hint="Wait for the holder to finish. A lock whose holder died goes stale "
                    f"when its lease ({self.settings.lease}) ends; an unreadable lock object "
                    "must be removed by an operator (Vault.break_lock).",
                )
            time.sleep(min(remaining, delay))
            delay = min(delay * 2, 2.0)

    def _names(self) -> list[str]:
        return [info.name for info in self.store.list(LOCKS_PREFIX) if lock_kind_of(info.name)]

    def _conflicts(self, held: HeldLock) -> list[str]:
        """Return descriptions of the locks that keep ``held`` from proceeding.

        Removes stale conflicting locks. An exclusive holder lists again after removing
        any, so that a lock written meanwhile (by a holder refreshing the lock just
        removed) is seen: see the module docstring.
        """
        for _round in range(MAX_CLEANUP_ROUNDS):
            conflicts: list[str] = []
            removed = False
            now = self.now()
            for name in self._names():
                if name == held.name or (held.kind == "shared" and lock_kind_of(name) == "shared"):
                    continue
                try:
                    lock = self.read(name)
                except NotFoundError:
                    continue
                except (IntegrityError, UnsupportedError) as exc:
                    conflicts.append(f"unreadable lock object {name} ({exc})")
                    continue
                if lock.holder == held.holder:
                    continue
                reason = lock.stale_reason(now, self.settings.clock_skew)
                if reason is None:
                    conflicts.append(lock.describe())
                    continue
                _log.info("removing stale lock %s: %s", name, reason)
                self.store.delete(name)
                held.stale_removed += 1
                removed = True
            if conflicts or not removed or held.kind == "shared":
                return conflicts
        return [f"lock objects kept changing over {MAX_CLEANUP_ROUNDS} listings"]


class HeldLock:
    """A lock this process holds; refreshed by a background thread until released."""

    def __init__(self, locks: VaultLocks, kind: LockKind, purpose: str) -> None:
        self._locks = locks
        self._settings = locks.settings
        self.kind: LockKind = kind
        self.purpose = purpose
        self.holder = secrets.token_hex(16)
        self.stale_removed = 0
        """Stale locks removed while acquiring this one."""
        self._created = locks.now()
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: str | None = None
        self._released = False
        self._name = self._write()
        self._refreshed = (time.monotonic(), time.time())

    @property
    def name(self) -> str:
        """The current lock object (a refresh replaces it)."""
        return self._name

    @property
    def lost(self) -> bool:
        """True once the lock was found removed (by someone who judged it stale)."""
        return self._lost is not None

    def check(self) -> None:
        """Raise ``ChangedMeanwhileError`` if the lock was lost."""
        if self._lost is not None:
            raise ChangedMeanwhileError(f"lost the vault lock: {self._lost}")

    def refresh(self) -> None:
        """Renew the lease: write a new lock object, check the old one still exists,
        delete the old one.

        Raises ``ChangedMeanwhileError`` (and marks the lock lost) if the old object is gone: a
        holder that was judged stale must stop, whatever happened meanwhile. Raises store
        errors as they come (the old object then stays the lock).
        """
        with self._mutex:
            self.check()
            if self._released:
                raise ChangedMeanwhileError("this lock was released")
            old = self._name
            new = self._write()
            try:
                self._locks.store.stat(old)
            except NotFoundError:
                self._lost = f"{old} was removed (its lease had ended or an operator broke it)"
                self._delete_quietly(new)
                _log.error("vault lock lost: %s", self._lost)
                self.check()
            except BaseException:
                self._delete_quietly(new)
                raise
            self._name = new
            self._refreshed = (time.monotonic(), time.time())
            self._delete_quietly(old)

    def ensure_fresh(self) -> None:
        """Refresh now unless the last refresh is younger than the refresh interval (by
        both the monotonic and the wall clock, so a suspended process refreshes, and so
        checks, before it acts). Raises like :meth:`refresh`."""
        self.check()
        interval = self._settings.refresh_interval.total_seconds()
        monotonic, wall = self._refreshed
        if time.monotonic() - monotonic >= interval or abs(time.time() - wall) >= interval:
            self.refresh()

    def start(self) -> None:
        """Start the background refresher (daemon thread)."""
        self._thread = threading.Thread(
            target=self._run, name=f"vault-lock-{self.kind}", daemon=True
        )
        self._thread.start()

    def release(self) -> None:
        """Stop refreshing and delete the lock object (best effort). Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._mutex:
            if self._released:
                return
            self._released = True
            if self._lost is None:
                self._delete_quietly(self._name)

    def _run(self) -> None:
        interval = self._settings.refresh_interval.total_seconds()
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except ConflictError:
                return
            except StrongroomError as exc:
                _log.warning("could not refresh vault lock %s: %s", self._name, exc)

    def _write(self) -> str:
        """Put a fresh lock object (create-exclusive) and return its name."""
        locks = self._locks
        now = locks.now()
        document = _LockDocument(
            vault_id=locks.vault_id,
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
        keys = locks.keyring.current()
        for attempt in range(3):
            name = f"{LOCKS_PREFIX}{self.kind}-{secrets.token_hex(16)}"
            blob = seal(
                MAGIC_LOCK,
                keys.generation,
                keys.data_key,
                document.model_dump_json().encode("utf-8"),
                context=name.encode("ascii"),
                compress_level=None,
            )
            try:
                locks.store.put(name, blob, exclusive=True)
            except ConflictError:
                if attempt == 2:
                    raise
                continue  # 128 random bits collided: take another name
            return name
        raise AssertionError("unreachable")

    def _delete_quietly(self, name: str) -> None:
        try:
            self._locks.store.delete(name)
        except StrongroomError as exc:
            _log.warning("could not remove lock object %s: %s", name, exc)

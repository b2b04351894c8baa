"""Vault locks: shared and exclusive, leases, refresh, stale locks, races."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.errors import ConfigError, ConflictError
from strongroom.storage.base import BlobInfo
from strongroom.storage.memory import MemoryStore
from strongroom.vault import LockSettings, Vault
from strongroom.vault.locks import (
    HeldLock,
    LockInfo,
    LockKind,
    VaultLocks,
    host_name,
    lock_kind_of,
)

from .conftest import OPTIONS, VaultFactory, backup, restore, sample_data


class Clock:
    """A settable clock for lock and GC tests."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _locks(vault: Vault, clock: Clock | None = None, **settings: timedelta) -> VaultLocks:
    if clock is not None:
        vault.lock_settings = LockSettings(clock=clock, **settings)
    return vault.vault_locks()


def _lock_names(vault: Vault) -> list[str]:
    return sorted(info.name for info in vault.store.list("locks/"))


def test_shared_locks_coexist_and_are_removed_on_release(make_vault: VaultFactory) -> None:
    vault = make_vault()
    locks = vault.vault_locks()
    one = locks.acquire("shared", "backup")
    two = locks.acquire("shared", "backup")
    held, unreadable = vault.locks()
    assert not unreadable
    assert sorted(lock.name for lock in held) == sorted([one.name, two.name])
    info = held[0]
    assert info.kind == "shared" and info.purpose == "backup"
    assert info.pid == os.getpid() and info.host == host_name()
    assert info.expires - info.written == vault.lock_settings.lease
    one.release()
    two.release()
    two.release()  # idempotent
    assert _lock_names(vault) == []


def test_exclusive_and_shared_exclude_each_other(make_vault: VaultFactory) -> None:
    vault = make_vault()
    locks = vault.vault_locks()
    shared = locks.acquire("shared", "backup")
    with pytest.raises(ConflictError, match="shared lock") as caught:
        locks.acquire("exclusive", "gc")
    assert caught.value.retryable
    assert _lock_names(vault) == [shared.name]  # the loser removed its own lock
    shared.release()
    exclusive = locks.acquire("exclusive", "gc")
    with pytest.raises(ConflictError, match="exclusive lock"):
        locks.acquire("shared", "backup")
    with pytest.raises(ConflictError):
        locks.acquire("exclusive", "repair")
    exclusive.release()
    locks.acquire("shared", "backup").release()


def test_a_writer_holds_a_shared_lock_from_its_first_stream(make_vault: VaultFactory) -> None:
    vault = make_vault()
    writer = vault.writer(OPTIONS)
    assert _lock_names(vault) == []
    with writer.open_stream("a") as stream:
        stream.write(b"data")
    (name,) = _lock_names(vault)
    assert lock_kind_of(name) == "shared"
    writer.commit()
    assert _lock_names(vault) == []
    aborted = vault.writer(OPTIONS)
    aborted.add_stream("b", [b"x"])
    aborted.abort()
    assert _lock_names(vault) == []


def test_writer_cannot_start_while_gc_holds_the_vault(make_vault: VaultFactory) -> None:
    vault = make_vault()
    exclusive = vault.vault_locks().acquire("exclusive", "gc")
    with vault.writer(OPTIONS) as writer:
        with pytest.raises(ConflictError, match="gc"):
            writer.add_stream("a", [b"x"])
        with pytest.raises(ConflictError):
            writer.commit()
    assert writer.state == "aborted"
    assert vault.points() == []
    exclusive.release()
    backup(vault, {"a": b"x"})


def test_lock_objects_are_sealed(make_vault: VaultFactory) -> None:
    vault = make_vault()
    held = vault.vault_locks().acquire("shared", "backup-of-secret-db")
    blob = vault.store.get(held.name)
    assert blob.startswith(b"SRLK")
    assert host_name().encode() not in blob
    assert b"backup-of-secret-db" not in blob
    held.release()


def test_an_expired_lease_is_stale_and_removed(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    locks = _locks(vault, clock)
    crashed = HeldLock(locks, "shared", "backup")  # written, never refreshed
    clock.advance(vault.lock_settings.lease)
    with pytest.raises(ConflictError):
        locks.acquire("exclusive", "gc")  # within the clock-skew allowance: still live
    clock.advance(vault.lock_settings.clock_skew + timedelta(seconds=1))
    exclusive = locks.acquire("exclusive", "gc")
    assert exclusive.stale_removed == 1
    assert _lock_names(vault) == [exclusive.name]
    with pytest.raises(ConflictError, match="lost"):
        crashed.refresh()
    assert crashed.lost
    assert _lock_names(vault) == [exclusive.name]  # the lost holder wrote nothing back
    exclusive.release()


def test_a_stale_exclusive_lock_does_not_block_writers(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    locks = _locks(vault, clock)
    HeldLock(locks, "exclusive", "gc")
    clock.advance(timedelta(hours=1))
    point_id = backup(vault, {"a": b"after a crashed gc"})
    assert restore(vault, point_id) == {"a": b"after a crashed gc"}
    assert _lock_names(vault) == []


def test_a_lock_of_a_dead_process_on_this_machine_is_stale_at_once(
    make_vault: VaultFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = make_vault()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True)  # fmt: skip
    dead_pid = int(child.stdout)
    locks = vault.vault_locks()
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: dead_pid)
        HeldLock(locks, "shared", "backup")
    alive = HeldLock(locks, "shared", "backup")  # this process: alive, lease running
    with pytest.raises(ConflictError, match=str(os.getpid())) as caught:
        locks.acquire("exclusive", "gc")
    assert str(dead_pid) not in str(caught.value)
    assert _lock_names(vault) == [alive.name]  # the dead holder's lock was removed
    alive.release()
    locks.acquire("exclusive", "gc").release()


def test_refresh_replaces_the_lock_object(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    held = _locks(vault, clock).acquire("shared", "backup")
    first = held.name
    clock.advance(timedelta(minutes=2))
    held.refresh()
    assert held.name != first
    assert _lock_names(vault) == [held.name]
    (info,), _ = vault.locks()
    assert info.holder == held.holder
    assert info.expires == clock.now + vault.lock_settings.lease
    assert info.created < info.written
    held.release()


def wait_for_refresh_at(vault: Vault, clock: Clock) -> LockInfo:
    """Wait until the vault holds one lock object, written at ``clock.now`` (a refresh by
    the background thread after the clock last moved); return it.

    The thread refreshes every fraction of a real second, however late a loaded machine
    runs it: this waits for that event, and the bound only stops a hang.
    """
    for _ in range(60_000):
        found, _ = vault.locks()
        if len(found) == 1 and found[0].written == clock.now:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no refresh at {clock.now} came")


def test_the_background_thread_keeps_the_lease(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    lease = timedelta(seconds=3)
    vault.lock_settings = LockSettings(
        clock=clock, lease=lease, refresh=timedelta(seconds=0.05), clock_skew=timedelta(0)
    )
    held = vault.vault_locks().acquire("shared", "backup")
    first = held.name
    first_expires = clock.now + lease
    # Time (the locks' clock) moves in steps of 2 s, past the first lease after two: the
    # lock stays live only because each step is followed by a refresh.
    for _ in range(3):
        clock.advance(timedelta(seconds=2))
        info = wait_for_refresh_at(vault, clock)
        assert info.expires == clock.now + lease
        assert info.stale_reason(clock.now, timedelta(0)) is None
        assert info.holder == held.holder
    assert clock.now > first_expires
    assert held.name != first
    assert not held.lost
    held.release()
    assert _lock_names(vault) == []


def test_a_broken_lock_stops_its_writer(make_vault: VaultFactory) -> None:
    vault = make_vault()
    first = backup(vault, {"a": b"first"})
    writer = vault.writer(OPTIONS)
    writer.add_stream("b", [sample_data(100_000)])
    (name,) = _lock_names(vault)
    vault.break_lock(name)
    with pytest.raises(ConflictError, match="lost the vault lock"):
        writer.commit()
    assert writer.state == "aborted"
    assert [point.id for point in vault.points()] == [first]
    assert _lock_names(vault) == []


def test_unreadable_locks_block_until_broken(make_vault: VaultFactory) -> None:
    vault = make_vault()
    name = "locks/exclusive-" + "ab" * 16
    vault.store.put(name, b"not a lock")
    vault.store.put("locks/README", b"unknown names are ignored")
    _, unreadable = vault.locks()
    assert set(unreadable) == {name}
    with pytest.raises(ConflictError, match="unreadable lock object"):
        vault.vault_locks().acquire("shared", "backup")
    with pytest.raises(ConflictError, match="unreadable lock object"):
        vault.gc(grace=timedelta(0))
    vault.break_lock(name)
    with pytest.raises(ConfigError):
        vault.break_lock("locks/README")
    backup(vault, {"a": b"x"})
    vault.gc(grace=timedelta(0))


class WatchedStore(MemoryStore):
    """A memory store that tells when a shared lock object is deleted."""

    def __init__(self) -> None:
        super().__init__()
        self.shared_lock_deleted = threading.Event()

    def delete(self, name: str) -> None:
        super().delete(name)
        if name.startswith("locks/shared-"):
            self.shared_lock_deleted.set()


def test_acquire_waits_for_a_lock_to_go(make_vault: VaultFactory) -> None:
    store = WatchedStore()
    vault = make_vault(store)
    exclusive = vault.vault_locks().acquire("exclusive", "gc")
    vault.lock_settings = LockSettings(wait=timedelta(minutes=10))
    taken: list[HeldLock] = []
    waiter = threading.Thread(
        target=lambda: taken.append(vault.vault_locks().acquire("shared", "backup"))
    )
    waiter.start()
    # The waiter met the exclusive lock (it removed its own attempt) and keeps waiting.
    assert store.shared_lock_deleted.wait(timeout=600)
    assert taken == []
    exclusive.release()
    waiter.join(timeout=600)
    (shared,) = taken
    assert _lock_names(vault) == [shared.name]
    shared.release()


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        LockSettings(lease=timedelta(seconds=0.5))
    with pytest.raises(ConfigError):
        LockSettings(lease=timedelta(minutes=1), refresh=timedelta(seconds=30))
    with pytest.raises(ConfigError):
        LockSettings(clock_skew=timedelta(seconds=-1))
    assert LockSettings().refresh_interval == timedelta(minutes=5) / 3


class _JitteryStore(MemoryStore):
    """Sleeps a little at random in every put and list, to vary the interleavings."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._random = random.Random(seed)

    def _pause(self) -> None:
        time.sleep(self._random.random() * 0.002)

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        self._pause()
        super().put(name, data, exclusive=exclusive)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        self._pause()
        return super().list(prefix)


@pytest.mark.parametrize("kinds", [("exclusive", "shared"), ("exclusive", "exclusive")])
def test_conflicting_acquirers_never_both_win(
    make_vault: VaultFactory, kinds: tuple[LockKind, LockKind]
) -> None:
    vault = make_vault(_JitteryStore(seed=7))
    locks = vault.vault_locks()

    def contend(kind: LockKind, barrier: threading.Barrier, won: list[HeldLock]) -> None:
        barrier.wait()
        with contextlib.suppress(ConflictError):
            won.append(locks.acquire(kind, "race"))

    for _ in range(60):
        barrier = threading.Barrier(2)
        won: list[HeldLock] = []
        threads = [threading.Thread(target=contend, args=(kind, barrier, won)) for kind in kinds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) <= 1
        for held in won:
            held.release()
        assert _lock_names(vault) == []

"""Vault leases: shared and exclusive, renewal, stale and damaged leases, races."""

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
from strongroom.vault import LeaseSettings, Vault
from strongroom.vault.leases import (
    HeldLease,
    LeaseInfo,
    LeaseKind,
    VaultLeases,
    host_name,
    lease_kind_of,
)

from .conftest import OPTIONS, VaultFactory, abandoned_lease, backup, restore, sample_data


class Clock:
    """A settable clock for lease and GC tests."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _leases(vault: Vault, clock: Clock | None = None, **settings: timedelta) -> VaultLeases:
    if clock is not None:
        vault.lease_settings = LeaseSettings(clock=clock, **settings)
    return vault.vault_leases()


def _lease_names(vault: Vault) -> list[str]:
    return sorted(info.name for info in vault.store.list("locks/") if lease_kind_of(info.name))


def test_shared_locks_coexist_and_are_removed_on_release(make_vault: VaultFactory) -> None:
    vault = make_vault()
    locks = vault.vault_leases()
    one = locks.acquire("shared", "backup")
    two = locks.acquire("shared", "backup")
    statuses = vault.leases()
    assert [status.state for status in statuses] == ["live", "live"]
    assert sorted(status.name for status in statuses) == sorted([one.name, two.name])
    info = statuses[0].info
    assert info is not None
    assert info.kind == "shared" and info.purpose == "backup"
    assert info.pid == os.getpid() and info.host == host_name()
    assert info.expires - info.written == vault.lease_settings.lease
    one.release()
    two.release()
    two.release()  # idempotent
    assert _lease_names(vault) == []


def test_exclusive_and_shared_exclude_each_other(make_vault: VaultFactory) -> None:
    vault = make_vault()
    locks = vault.vault_leases()
    shared = locks.acquire("shared", "backup")
    with pytest.raises(ConflictError, match="shared lease") as caught:
        locks.acquire("exclusive", "gc")
    assert caught.value.retryable
    assert _lease_names(vault) == [shared.name]  # the loser removed its own lease
    shared.release()
    exclusive = locks.acquire("exclusive", "gc")
    with pytest.raises(ConflictError, match="exclusive lease"):
        locks.acquire("shared", "backup")
    with pytest.raises(ConflictError):
        locks.acquire("exclusive", "repair")
    exclusive.release()
    locks.acquire("shared", "backup").release()


def test_a_writer_holds_a_shared_lock_from_its_first_stream(make_vault: VaultFactory) -> None:
    vault = make_vault()
    writer = vault.writer(OPTIONS)
    assert _lease_names(vault) == []
    with writer.open_stream("a") as stream:
        stream.write(b"data")
    (name,) = _lease_names(vault)
    assert lease_kind_of(name) == "shared"
    writer.commit()
    assert _lease_names(vault) == []
    aborted = vault.writer(OPTIONS)
    aborted.add_stream("b", [b"x"])
    aborted.abort()
    assert _lease_names(vault) == []


def test_writer_cannot_start_while_gc_holds_the_vault(make_vault: VaultFactory) -> None:
    vault = make_vault()
    exclusive = vault.vault_leases().acquire("exclusive", "gc")
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
    held = vault.vault_leases().acquire("shared", "backup-of-secret-db")
    blob = vault.store.get(held.name)
    assert blob.startswith(b"SRLK")
    assert host_name().encode() not in blob
    assert b"backup-of-secret-db" not in blob
    held.release()


def test_an_expired_lease_is_stale_and_removed(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    locks = _leases(vault, clock)
    crashed = abandoned_lease(locks, "shared")  # written, never refreshed
    clock.advance(vault.lease_settings.lease)
    with pytest.raises(ConflictError):
        locks.acquire("exclusive", "gc")  # within the clock-skew allowance: still live
    clock.advance(vault.lease_settings.clock_skew + timedelta(seconds=1))
    exclusive = locks.acquire("exclusive", "gc")
    assert exclusive.stale_removed == 1
    assert _lease_names(vault) == [exclusive.name]
    with pytest.raises(ConflictError, match="lost"):
        crashed.refresh()
    assert crashed.lost
    assert _lease_names(vault) == [exclusive.name]  # the lost holder wrote nothing back
    exclusive.release()


def test_a_stale_exclusive_lock_does_not_block_writers(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    locks = _leases(vault, clock)
    abandoned_lease(locks, "exclusive", "gc")
    clock.advance(timedelta(hours=1))
    point_id = backup(vault, {"a": b"after a crashed gc"})
    assert restore(vault, point_id) == {"a": b"after a crashed gc"}
    assert _lease_names(vault) == []


def test_a_lock_of_a_dead_process_on_this_machine_is_stale_at_once(
    make_vault: VaultFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = make_vault()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True)  # fmt: skip
    dead_pid = int(child.stdout)
    locks = vault.vault_leases()
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: dead_pid)
        abandoned_lease(locks, "shared")
    alive = abandoned_lease(locks, "shared")  # this process: alive, lease running
    with pytest.raises(ConflictError, match=str(os.getpid())) as caught:
        locks.acquire("exclusive", "gc")
    assert str(dead_pid) not in str(caught.value)
    assert _lease_names(vault) == [alive.name]  # the dead holder's lock was removed
    alive.release()
    locks.acquire("exclusive", "gc").release()


def test_refresh_replaces_the_lock_object(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    held = _leases(vault, clock).acquire("shared", "backup")
    first = held.name
    clock.advance(timedelta(minutes=2))
    held.refresh()
    assert held.name != first
    assert _lease_names(vault) == [held.name]
    (status,) = vault.leases()
    info = status.info
    assert info is not None
    assert info.holder == held.holder
    assert info.expires == clock.now + vault.lease_settings.lease
    assert info.created < info.written
    held.release()


def wait_for_refresh_at(vault: Vault, clock: Clock) -> LeaseInfo:
    """Wait until the vault holds one lease object, written at ``clock.now`` (a refresh by
    the background thread after the clock last moved); return it.

    The thread refreshes every fraction of a real second, however late a loaded machine
    runs it: this waits for that event, and the bound only stops a hang.
    """
    for _ in range(60_000):
        found = [status.info for status in vault.leases() if status.info is not None]
        if len(found) == 1 and found[0].written == clock.now:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no refresh at {clock.now} came")


def test_the_background_thread_keeps_the_lease(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    lease = timedelta(seconds=3)
    vault.lease_settings = LeaseSettings(
        clock=clock, lease=lease, refresh=timedelta(seconds=0.05), clock_skew=timedelta(0)
    )
    held = vault.vault_leases().acquire("shared", "backup")
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
    assert _lease_names(vault) == []


def test_a_broken_lock_stops_its_writer(make_vault: VaultFactory) -> None:
    vault = make_vault()
    first = backup(vault, {"a": b"first"})
    writer = vault.writer(OPTIONS)
    writer.add_stream("b", [sample_data(100_000)])
    (name,) = _lease_names(vault)
    vault.break_lease(name)
    with pytest.raises(ConflictError, match="lost the vault lease"):
        writer.commit()
    assert writer.state == "aborted"
    assert [point.id for point in vault.points()] == [first]
    assert _lease_names(vault) == []


def test_damaged_leases_block_until_they_age_out(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    leases = _leases(vault, clock)
    name = "locks/exclusive-" + "ab" * 16
    vault.store.put(name, b"not a lease: what a GC killed mid-write might leave")
    vault.store.put("locks/README", b"unknown names are ignored")
    (status,) = vault.leases()
    assert (status.name, status.state, status.info) == (name, "damaged", None)
    with pytest.raises(ConflictError, match=f"damaged lease object {name}") as caught:
        leases.acquire("shared", "backup")
    assert "strongroom vault leases" in caught.value.hint
    assert "Vault." not in caught.value.hint and "break_" not in caught.value.hint
    assert "6 min after it was first seen" in caught.value.hint
    with pytest.raises(ConflictError, match="damaged lease object"):
        vault.gc(grace=timedelta(0))
    clock.advance(vault.lease_settings.damaged_after + timedelta(seconds=1))
    (status,) = vault.leases()
    assert status.state == "stale" and "damaged" in status.reason
    point_id = backup(vault, {"a": b"x"})  # removes the aged-out damaged lease
    assert _lease_names(vault) == []
    assert restore(vault, point_id) == {"a": b"x"}
    with pytest.raises(ConfigError):
        vault.break_lease("locks/README")


def test_operators_remove_stale_and_damaged_leases_only(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    leases = _leases(vault, clock)
    damaged = "locks/shared-" + "cd" * 16
    vault.store.put(damaged, b"garbage")
    stale = abandoned_lease(leases, "exclusive", "gc")
    clock.advance(timedelta(hours=1))
    live = abandoned_lease(leases, "shared")  # written now by this live process: live
    states = {status.name: status.state for status in vault.leases()}
    assert states == {damaged: "damaged", stale.name: "stale", live.name: "live"}
    removed = vault.remove_stale_leases()
    assert sorted(status.name for status in removed) == sorted([damaged, stale.name])
    assert _lease_names(vault) == [live.name]


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
    exclusive = vault.vault_leases().acquire("exclusive", "gc")
    vault.lease_settings = LeaseSettings(wait=timedelta(minutes=10))
    taken: list[HeldLease] = []
    waiter = threading.Thread(
        target=lambda: taken.append(vault.vault_leases().acquire("shared", "backup"))
    )
    waiter.start()
    # The waiter met the exclusive lock (it removed its own attempt) and keeps waiting.
    assert store.shared_lock_deleted.wait(timeout=600)
    assert taken == []
    exclusive.release()
    waiter.join(timeout=600)
    (shared,) = taken
    assert _lease_names(vault) == [shared.name]
    shared.release()


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        LeaseSettings(lease=timedelta(seconds=0.5))
    with pytest.raises(ConfigError):
        LeaseSettings(lease=timedelta(minutes=1), refresh=timedelta(seconds=30))
    with pytest.raises(ConfigError):
        LeaseSettings(clock_skew=timedelta(seconds=-1))
    assert LeaseSettings().refresh_interval == timedelta(minutes=5) / 3


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
    make_vault: VaultFactory, kinds: tuple[LeaseKind, LeaseKind]
) -> None:
    vault = make_vault(_JitteryStore(seed=7))
    locks = vault.vault_leases()

    def contend(kind: LeaseKind, barrier: threading.Barrier, won: list[HeldLease]) -> None:
        barrier.wait()
        with contextlib.suppress(ConflictError):
            won.append(locks.acquire(kind, "race"))

    for _ in range(60):
        barrier = threading.Barrier(2)
        won: list[HeldLease] = []
        threads = [threading.Thread(target=contend, args=(kind, barrier, won)) for kind in kinds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) <= 1
        for held in won:
            held.release()
        assert _lease_names(vault) == []

"""Lease races at exact points (issue #12, item 1), on memory, local and lagging stores.

Each test puts a step of another actor at one exact point of the protocol with
``FaultyStore.before``, so the interleaving is the same on every run, whatever the load.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.errors import ConflictError
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import LeaseSettings, Vault

from .conftest import VaultFactory, abandoned_lease, backup, restore, sample_data
from .test_leases import Clock

StoreFactory = Callable[[], FaultyStore]


@pytest.fixture(params=["memory", "local", "lagging"])
def faulty_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A FaultyStore over a memory or local store; ``lagging``: listings of ``locks/``
    lag two list calls behind the changes, and every call takes up to 1 ms."""

    def make() -> FaultyStore:
        if request.param == "local":
            return FaultyStore(LocalStore(tmp_path / "vault"))
        store = FaultyStore(MemoryStore())
        if request.param == "lagging":
            store.add_latency(0.001, seed=12)
            store.delay_listings(2, "locks/")
        return store

    return make


def _two_clients(make_vault: VaultFactory, store: FaultyStore) -> tuple[Vault, Vault]:
    """Two clients of one vault, each with its own index cache."""
    return make_vault(store), make_vault(store, create=False)


def test_a_backup_cannot_start_while_gc_renews_its_lease(
    make_vault: VaultFactory, faulty_store: StoreFactory
) -> None:
    store = faulty_store()
    gc_client, backup_client = _two_clients(make_vault, store)
    gc_lease = gc_client.vault_leases().acquire("exclusive", "gc")
    # The backup lists the GC's lease object; right before it reads it, the GC renews
    # (new object, old one deleted): the object the backup listed is gone when read.
    store.before("get", "locks/exclusive-", gc_lease.refresh)
    with pytest.raises(ConflictError, match="exclusive lease"):
        backup_client.vault_leases().acquire("shared", "backup")
    with pytest.raises(ConflictError, match="exclusive lease"):
        backup(backup_client, {"a": b"during gc"})
    assert backup_client.points() == []
    gc_lease.release()


def test_gc_cannot_start_while_a_writer_renews_its_lease(
    make_vault: VaultFactory, faulty_store: StoreFactory
) -> None:
    store = faulty_store()
    writer_client, gc_client = _two_clients(make_vault, store)
    shared = writer_client.vault_leases().acquire("shared", "backup")
    store.before("get", "locks/shared-", shared.refresh)
    with pytest.raises(ConflictError, match="shared lease"):
        gc_client.gc(grace=timedelta(0))
    shared.release()


def test_a_stale_gc_that_renews_while_a_backup_removes_it_keeps_the_backup_out(
    make_vault: VaultFactory, faulty_store: StoreFactory
) -> None:
    """The GC paused past its lease; the backup reads it as stale and deletes it, but
    the GC renewed in between (new object first): the backup must see the new object."""
    store = faulty_store()
    gc_client, backup_client = _two_clients(make_vault, store)
    clock = Clock()
    gc_client.lease_settings = backup_client.lease_settings = LeaseSettings(clock=clock)
    gc_lease = gc_client.vault_leases().acquire("exclusive", "gc")
    clock.advance(timedelta(hours=1))  # the GC's lease is stale for everyone now
    store.before("delete", gc_lease.name, gc_lease.refresh)  # ... and the GC wakes up
    with pytest.raises(ConflictError, match="exclusive lease"):
        backup_client.vault_leases().acquire("shared", "backup")
    assert not gc_lease.lost
    gc_lease.release()


def test_gc_stops_before_deleting_when_a_writer_slipped_in(
    make_vault: VaultFactory, faulty_store: StoreFactory
) -> None:
    """A writer that ignores leases (a strongroom older than this one) takes a shared
    lease while GC runs: GC's check before its deletions sees it and deletes nothing."""
    store = faulty_store()
    gc_client, writer_client = _two_clients(make_vault, store)
    keep = backup(gc_client, {"a": sample_data(50_000, seed=1)})
    doomed = backup(gc_client, {"b": sample_data(50_000, seed=2)})
    gc_client.delete_point(doomed)

    def writer_ignores_the_gc() -> None:
        lease = abandoned_lease(writer_client.vault_leases(), "shared")
        while lease.name not in {info.name for info in store.list("locks/")}:
            pass  # it ignores the GC's lease, but its own is listed before it writes data

    store.before("list", "data/", writer_ignores_the_gc)
    before = {info.name for info in store.list("") if not info.name.startswith("locks/")}
    with pytest.raises(ConflictError, match="appeared"):
        gc_client.gc(grace=timedelta(0))
    after = {info.name for info in store.list("")}
    assert before <= after  # nothing deleted
    assert restore(gc_client, keep) == {"a": sample_data(50_000, seed=1)}

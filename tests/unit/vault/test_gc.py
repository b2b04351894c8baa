"""Garbage collection: what it deletes and repacks, what it must never touch, and that a
crash at any point of it leaves every committed point restorable."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.errors import ConflictError, InsufficientStorageError, IntegrityError
from strongroom.keys import PassphraseProvider
from strongroom.storage.base import BlobInfo, BlobStore, StoreCapabilities
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import LeaseSettings, Vault, VaultWriter
from tests.support.vault import assert_no_garbage, indexed_packs, stored_packs

from .conftest import (
    OPTIONS,
    PASSPHRASE,
    VaultFactory,
    abandoned_lease,
    backup,
    restore,
    sample_data,
)
from .test_leases import Clock

NOW = timedelta(0)


def crash_writer(writer: VaultWriter) -> None:
    """Make ``writer`` look like a process that died long ago: its uploads stop (those
    running land) and its lock is gone, as after its lease ended."""
    writer._packer.close()
    if writer._held is not None:
        writer._held.release()


def copy_store(store: BlobStore) -> MemoryStore:
    """Return a memory store holding a copy of every blob of ``store``."""
    copy = MemoryStore()
    for info in store.list():
        copy.put(info.name, store.get(info.name))
    return copy


def total_pack_bytes(store: BlobStore) -> int:
    return sum(stored_packs(store).values())


# -- a store that dies ----------------------------------------------------------------


class Crash(BaseException):
    """The process died: nothing after it reaches the store."""


class CrashingStore:
    """Passes calls through until the ``crash_at``-th put or delete, which (and every call
    after it) raises :class:`Crash` without reaching the store."""

    def __init__(self, inner: BlobStore, crash_at: int | None = None) -> None:
        self.inner = inner
        self.crash_at = crash_at
        self.mutations = 0
        self.crashed = False

    @property
    def capabilities(self) -> StoreCapabilities:
        return self.inner.capabilities

    @property
    def url(self) -> str:
        return self.inner.url

    def _mutate(self) -> None:
        self._alive()
        self.mutations += 1
        if self.crash_at is not None and self.mutations >= self.crash_at:
            self.crashed = True
            raise Crash

    def _alive(self) -> None:
        if self.crashed:
            raise Crash

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        self._mutate()
        self.inner.put(name, data, exclusive=exclusive)

    def delete(self, name: str) -> None:
        self._mutate()
        self.inner.delete(name)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self._alive()
        return self.inner.get(name, offset, length)

    def stat(self, name: str) -> BlobInfo:
        self._alive()
        return self.inner.stat(name)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        self._alive()
        return self.inner.list(prefix)


# -- fixtures -------------------------------------------------------------------------


def _messy_vault(make_vault: VaultFactory) -> tuple[Vault, dict[str, dict[str, bytes]]]:
    """A vault with live points sharing data with deleted ones, the unindexed packs of a
    crashed writer and the indexed packs of a writer whose manifest never came."""
    vault = make_vault()
    base = sample_data(600_000, seed=1)
    expected: dict[str, dict[str, bytes]] = {}
    first = backup(vault, {"base": base, "other": sample_data(200_000, seed=2)})
    second = backup(vault, {"base": base[:300_000] + sample_data(300_000, seed=3)})
    third = backup(vault, {"x": sample_data(150_000, seed=4), "empty": b""})
    expected[third] = {"x": sample_data(150_000, seed=4), "empty": b""}
    expected[second] = {"base": base[:300_000] + sample_data(300_000, seed=3)}
    vault.delete_point(first)
    # a writer that died before its index: unindexed packs
    crashed = vault.writer(OPTIONS)
    with crashed.open_stream("lost") as stream:
        stream.write(sample_data(300_000, seed=5))
    crash_writer(crashed)
    # a writer whose manifest never came: indexed packs no point references
    failed = VaultWriter(
        store=_NoManifests(vault.store),
        cache=vault.parts.index,
        keys=vault.parts.keyring.current(),
        config=vault.config,
        options=OPTIONS,
    )
    failed.add_stream("never", [sample_data(250_000, seed=6)])
    with pytest.raises(InsufficientStorageError):
        failed.commit()
    return vault, expected


class _NoManifests(CrashingStore):
    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        if name.startswith("manifests/"):
            raise InsufficientStorageError("full")
        super().put(name, data, exclusive=exclusive)


def _check_points(vault: Vault, expected: dict[str, dict[str, bytes]]) -> None:
    assert {point.id for point in vault.points()} == set(expected)
    for point_id, streams in expected.items():
        assert restore(vault, point_id) == streams


# -- what GC does ---------------------------------------------------------------------


def test_gc_reclaims_deleted_points_and_garbage(make_vault: VaultFactory) -> None:
    vault, expected = _messy_vault(make_vault)
    before = total_pack_bytes(vault.store)
    report = vault.gc(grace=NOW, repack_threshold=1.0)
    assert not report.dry_run and report.points == 2
    assert report.packs_deleted > 0 and report.packs_repacked > 0
    assert report.bytes_freed == before - total_pack_bytes(vault.store) > 0
    assert report.fragments_deleted > 0 and report.fragments_written > 0
    assert report.problems == {}
    assert vault.verify(read_data=True).ok
    _check_points(vault, expected)
    assert_no_garbage(vault)
    fresh = make_vault(vault.store, create=False)
    assert fresh.verify(read_data=True).ok
    _check_points(fresh, expected)
    again = vault.gc(grace=NOW, repack_threshold=1.0)
    assert (again.packs_deleted, again.packs_written, again.fragments_deleted) == (0, 0, 0)


def test_gc_of_a_clean_vault_changes_nothing(make_vault: VaultFactory) -> None:
    vault = make_vault()
    backup(vault, {"a": sample_data(300_000)})
    backup(vault, {"a": sample_data(300_000), "b": b"more"})
    before = {info.name for info in vault.store.list()}
    report = vault.gc(grace=NOW, repack_threshold=1.0)
    assert report.packs_deleted == report.packs_written == report.fragments_deleted == 0
    assert {info.name for info in vault.store.list()} == before


def test_deleting_every_point_frees_everything(make_vault: VaultFactory) -> None:
    vault = make_vault()
    for seed in range(3):
        vault.delete_point(backup(vault, {"a": sample_data(200_000, seed=seed)}))
    vault.gc(grace=NOW)
    assert list(vault.store.list("data/")) == []
    assert list(vault.store.list("index/")) == []
    assert vault.verify().ok
    point_id = backup(vault, {"a": sample_data(200_000, seed=1)})
    assert restore(vault, point_id) == {"a": sample_data(200_000, seed=1)}


def test_dry_run_changes_nothing_and_predicts_the_run(make_vault: VaultFactory) -> None:
    vault, expected = _messy_vault(make_vault)
    before = {info.name: info.size for info in vault.store.list()}
    dry = vault.gc(dry_run=True, grace=NOW, repack_threshold=1.0)
    assert dry.dry_run
    assert {info.name: info.size for info in vault.store.list()} == before
    real = vault.gc(grace=NOW, repack_threshold=1.0)
    assert (dry.packs_deleted, dry.packs_repacked, dry.bytes_deleted) == (
        real.packs_deleted,
        real.packs_repacked,
        real.bytes_deleted,
    )
    assert dry.fragments_deleted == real.fragments_deleted
    assert dry.live_chunks == real.live_chunks
    _check_points(vault, expected)


def test_repack_threshold(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(800_000, seed=1)
    kept_data = data[:100_000] + data[300_000:350_000] + data[600_000:650_000]
    old = backup(vault, {"a": data})
    kept = backup(vault, {"a": kept_data})
    vault.delete_point(old)
    never = vault.gc(grace=NOW, repack_threshold=0.0)
    assert never.packs_repacked == 0 and never.packs_deleted > 0
    live_packs = len(stored_packs(vault.store))
    report = vault.gc(grace=NOW, repack_threshold=1.0)
    assert report.packs_repacked > 0
    assert report.packs_written < report.packs_repacked <= live_packs
    assert restore(vault, kept) == {"a": kept_data}
    assert_no_garbage(vault)
    assert vault.verify(read_data=True).ok


def test_gc_across_key_generations(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(300_000, seed=1)
    old = backup(vault, {"a": data, "b": sample_data(100_000, seed=2)})
    vault.rotate_data_key()
    new = backup(vault, {"a": data})
    mixed = backup(vault, {"c": sample_data(50_000, seed=3)})
    vault.delete_point(new)
    vault.gc(grace=NOW, repack_threshold=1.0)
    assert restore(vault, old) == {"a": data, "b": sample_data(100_000, seed=2)}
    assert restore(vault, mixed) == {"c": sample_data(50_000, seed=3)}
    assert_no_garbage(vault)
    assert vault.verify(read_data=True).ok


def test_index_entries_of_vanished_dead_packs_are_dropped(make_vault: VaultFactory) -> None:
    vault = make_vault()
    dead = backup(vault, {"a": sample_data(300_000, seed=1)})
    live = backup(vault, {"b": sample_data(100_000, seed=2)})
    with vault.reader(dead) as reader:
        dead_chunk = next(reader.chunk_ids(reader.stream("a")))
    vault.delete_point(dead)
    location = vault.parts.index.locate(dead_chunk)
    assert location is not None
    vault.store.delete(location.pack_name)
    assert not vault.verify().ok  # the index names a missing pack
    vault.gc(grace=NOW)
    assert vault.verify(read_data=True).ok
    assert restore(vault, live) == {"b": sample_data(100_000, seed=2)}
    assert_no_garbage(vault)


def test_gc_removes_stale_locks(make_vault: VaultFactory) -> None:
    vault = make_vault()
    clock = Clock()
    vault.lease_settings = LeaseSettings(clock=clock)
    abandoned_lease(vault.vault_leases(), "shared")  # a writer that died
    abandoned_lease(vault.vault_leases(), "exclusive", "gc")  # a GC that died
    with pytest.raises(ConflictError):
        vault.gc(grace=NOW)
    clock.advance(timedelta(hours=1))
    report = vault.gc(grace=NOW)
    assert report.leases_removed == 2
    assert list(vault.store.list("locks/")) == []


# -- what GC must not touch -----------------------------------------------------------


def test_gc_refuses_while_a_writer_is_active(make_vault: VaultFactory) -> None:
    vault = make_vault()
    first = backup(vault, {"a": sample_data(100_000, seed=1)})
    other = make_vault(vault.store, create=False)
    writer = other.writer(OPTIONS)
    stream = writer.open_stream("big")
    big = sample_data(6_000_000, seed=2)
    stream.write(big)  # past the chunker's window: packs uploaded, nothing indexed yet
    uploaded = stored_packs(vault.store)
    assert len(uploaded) > len(indexed_packs(vault))
    with pytest.raises(ConflictError, match="backup"):
        vault.gc(grace=NOW)
    dry = vault.gc(dry_run=True, grace=NOW)  # a dry run may look, and reports the packs
    assert dry.packs_deleted > 0
    assert set(uploaded) <= set(stored_packs(vault.store))  # uploads may still be landing
    stream.close()
    second = writer.commit()
    vault.gc(grace=NOW, repack_threshold=1.0)
    assert restore(vault, first) == {"a": sample_data(100_000, seed=1)}
    assert restore(vault, second) == {"big": big}
    assert_no_garbage(vault)


def test_grace_keeps_young_packs(make_vault: VaultFactory) -> None:
    vault, expected = _messy_vault(make_vault)
    clock = Clock()
    vault.lease_settings = LeaseSettings(clock=clock)
    before = {info.name for info in vault.store.list()}
    report = vault.gc(repack_threshold=1.0)  # default grace: one hour
    assert report.packs_deleted == report.packs_repacked == 0
    assert report.packs_too_young > 0
    assert {info.name for info in vault.store.list()} == before
    clock.advance(timedelta(minutes=59))
    assert vault.gc(repack_threshold=1.0).packs_deleted == 0
    clock.advance(timedelta(minutes=2))
    assert vault.gc(repack_threshold=1.0).packs_deleted > 0
    _check_points(vault, expected)
    assert_no_garbage(vault)


def test_a_young_fragment_keeps_the_packs_it_lists(make_vault: VaultFactory) -> None:
    vault, expected = _messy_vault(make_vault)
    clock = Clock()
    vault.lease_settings = LeaseSettings(clock=clock)
    vault.gc(dry_run=True)  # first sight of every object
    clock.advance(timedelta(hours=2))
    vault.repair_index()  # new fragments listing the old packs
    report = vault.gc(repack_threshold=1.0)
    assert report.packs_deleted == 0 and report.packs_too_young > 0
    clock.advance(timedelta(hours=2))
    assert vault.gc(repack_threshold=1.0).packs_deleted > 0
    _check_points(vault, expected)
    assert_no_garbage(vault)


def test_grace_uses_file_times_of_a_local_store(make_vault: VaultFactory, tmp_path: Path) -> None:
    vault, expected = _messy_vault(make_vault)
    store = LocalStore(tmp_path / "vault")
    for info in vault.store.list():
        store.put(info.name, vault.store.get(info.name))
    local = make_vault(store, create=False)
    assert local.gc(repack_threshold=1.0).packs_deleted == 0  # files just written
    old = time.time() - 2 * 3600
    for path in (tmp_path / "vault").rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    assert local.gc(repack_threshold=1.0).packs_deleted > 0
    _check_points(local, expected)
    assert_no_garbage(local)


@pytest.mark.parametrize("damage", ["fragment", "manifest", "live pack", "whole index"])
def test_gc_deletes_nothing_when_it_cannot_know_what_is_live(
    make_vault: VaultFactory, damage: str
) -> None:
    vault, _ = _messy_vault(make_vault)
    store = vault.store
    assert isinstance(store, MemoryStore)
    if damage == "fragment":
        name = next(info.name for info in store.list("index/"))
        store.put(name, store.get(name)[:-1] + b"\x00")
    elif damage == "manifest":
        name = next(info.name for info in store.list("manifests/"))
        data = bytearray(store.get(name))
        data[60] ^= 1
        store.put(name, bytes(data))
    elif damage == "live pack":
        point = vault.points()[0]
        with vault.reader(point.id) as reader:
            chunk_id = next(reader.chunk_ids(reader.streams()[0]))
        location = vault.parts.index.locate(chunk_id)
        assert location is not None
        store.delete(location.pack_name)
    else:
        for info in list(store.list("index/")):
            store.delete(info.name)
    before = {info.name for info in store.list()}
    with pytest.raises(IntegrityError, match="gc stopped"):
        vault.gc(grace=NOW, repack_threshold=1.0)
    assert {info.name for info in store.list()} == before


def test_gc_arguments_are_checked(make_vault: VaultFactory) -> None:
    vault = make_vault()
    with pytest.raises(Exception, match="repack_threshold"):
        vault.gc(repack_threshold=1.5)
    with pytest.raises(Exception, match="grace"):
        vault.gc(grace=timedelta(seconds=-1))
    assert list(vault.store.list("locks/")) == []


def test_readers_follow_chunks_that_a_repack_moved(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(800_000, seed=1)
    kept_data = data[:100_000] + data[300_000:350_000] + data[600_000:650_000]
    old = backup(vault, {"a": data})
    kept = backup(vault, {"a": kept_data})
    reader_vault = make_vault(vault.store, create=False)  # its index cache is synced now
    vault.delete_point(old)
    assert vault.gc(grace=NOW, repack_threshold=1.0).packs_repacked > 0
    assert restore(reader_vault, kept) == {"a": kept_data}


# -- a crash at any point of a GC -------------------------------------------------------


def test_a_crash_at_any_point_of_gc_leaves_every_point_restorable(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    vault, expected = _messy_vault(make_vault)
    base = copy_store(vault.store)
    counting = CrashingStore(copy_store(base))
    with Vault.open(counting, PassphraseProvider(PASSPHRASE), cache_dir=tmp_path / "count") as full:
        full.gc(grace=NOW, repack_threshold=1.0)
    total = counting.mutations
    assert total > 10
    later = Clock()
    later.advance(timedelta(hours=1))  # the dead GC's lock has expired by then
    for crash_at in range(1, total + 1):
        crashed = copy_store(base)
        dying = CrashingStore(crashed, crash_at=crash_at)
        cache = tmp_path / f"crash-{crash_at}"
        victim = Vault.open(dying, PassphraseProvider(PASSPHRASE), cache_dir=cache)
        with victim, pytest.raises(Crash):
            victim.gc(grace=NOW, repack_threshold=1.0)
        survivor = make_vault(crashed, create=False)
        assert survivor.verify(read_data=True).ok, f"crash at mutation {crash_at}"
        _check_points(survivor, expected)
        survivor.lease_settings = LeaseSettings(clock=later)
        survivor.gc(grace=NOW, repack_threshold=1.0)
        assert_no_garbage(survivor)
        _check_points(survivor, expected)
        survivor.close()


def test_gc_after_a_failed_delete_can_run_again(make_vault: VaultFactory) -> None:
    vault, expected = _messy_vault(make_vault)
    store = vault.store
    victim_store = _FailingDeletes(store)
    victim = make_vault(victim_store, create=False)
    with pytest.raises(InsufficientStorageError):
        victim.gc(grace=NOW, repack_threshold=1.0)
    assert vault.verify(read_data=True).ok
    vault.gc(grace=NOW, repack_threshold=1.0)
    _check_points(vault, expected)
    assert_no_garbage(vault)


class _FailingDeletes(CrashingStore):
    """Fails the second delete of a pack with an ordinary store error (GC then stops)."""

    pack_deletes = 0

    def delete(self, name: str) -> None:
        if name.startswith("data/"):
            self.pack_deletes += 1
            if self.pack_deletes == 2:
                raise InsufficientStorageError("the store refuses")
        self.inner.delete(name)


def test_report_counts_objects(make_vault: VaultFactory) -> None:
    vault = make_vault()
    gone = backup(vault, {"a": sample_data(300_000, seed=1)})
    packs = stored_packs(vault.store)
    vault.delete_point(gone)
    report = vault.gc(grace=NOW)
    assert report.packs_deleted == len(packs)
    assert report.bytes_deleted == sum(packs.values()) == report.bytes_freed
    assert report.live_chunks == 0 and report.points == 0

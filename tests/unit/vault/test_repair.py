"""Index repair: the index rebuilt from pack headers alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.errors import ConflictError
from strongroom.keys import PassphraseProvider
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import LeaseSettings, Vault

from .conftest import OPTIONS, PASSPHRASE, VaultFactory, backup, restore, sample_data
from .test_gc import (
    Crash,
    CrashingStore,
    assert_no_garbage,
    copy_store,
    crash_writer,
    indexed_packs,
    stored_packs,
)
from .test_leases import Clock


def _points(vault: Vault) -> dict[str, dict[str, bytes]]:
    expected = {}
    for seed in range(3):
        streams = {
            "db": sample_data(150_000 * (seed + 1), seed=seed),
            "long": sample_data(400_000, seed=10),  # list chunks, shared by every point
        }
        expected[backup(vault, streams)] = streams
    return expected


def _check(vault: Vault, expected: dict[str, dict[str, bytes]]) -> None:
    assert {point.id for point in vault.points()} == set(expected)
    for point_id, streams in expected.items():
        assert restore(vault, point_id) == streams


def test_a_vault_without_index_is_restored(make_vault: VaultFactory) -> None:
    vault = make_vault()
    expected = _points(vault)
    chunks = vault.parts.index.counts()[0]
    for info in list(vault.store.list("index/")):
        vault.store.delete(info.name)
    damaged = make_vault(vault.store, create=False)
    assert not damaged.verify().ok
    report = damaged.repair_index()
    assert report.ok
    assert report.packs_indexed == len(stored_packs(vault.store))
    assert report.chunks_indexed == chunks
    assert report.fragments_written >= 1 and report.fragments_removed == 0
    assert damaged.verify(read_data=True).ok
    _check(damaged, expected)
    fresh = make_vault(vault.store, create=False)
    _check(fresh, expected)
    assert_no_garbage(fresh)


def test_repair_replaces_the_existing_fragments(make_vault: VaultFactory) -> None:
    vault = make_vault()
    expected = _points(vault)
    before = {info.name for info in vault.store.list("index/")}
    report = vault.repair_index()
    after = {info.name for info in vault.store.list("index/")}
    assert report.fragments_removed == len(before)
    assert len(after) == report.fragments_written and not after & before
    assert set(indexed_packs(vault)) == set(stored_packs(vault.store))
    _check(make_vault(vault.store, create=False), expected)
    assert list(vault.store.list("locks/")) == []


def test_an_unreadable_pack_is_named_and_the_rest_restores(make_vault: VaultFactory) -> None:
    vault = make_vault()
    first = backup(vault, {"a": sample_data(200_000, seed=1)})
    second = backup(vault, {"b": sample_data(200_000, seed=2)})
    with vault.reader(first) as reader:
        chunk_id = next(reader.chunk_ids(reader.stream("a")))
    location = vault.parts.index.locate(chunk_id)
    assert location is not None
    store = vault.store
    assert isinstance(store, MemoryStore)
    damaged_pack = location.pack_name
    data = bytearray(store.get(damaged_pack))
    data[-20] ^= 0x01  # inside the encrypted header
    store.put(damaged_pack, bytes(data))
    for info in list(store.list("index/")):
        store.delete(info.name)
    reopened = make_vault(store, create=False)
    report = reopened.repair_index()
    assert set(report.unreadable_packs) == {damaged_pack}
    assert "authentication" in report.unreadable_packs[damaged_pack]
    assert not report.ok
    assert restore(reopened, second) == {"b": sample_data(200_000, seed=2)}
    verify = reopened.verify()
    assert set(verify.damaged_points()) == {first}


def test_lost_packs_are_reported(make_vault: VaultFactory) -> None:
    vault = make_vault()
    point_id = backup(vault, {"a": sample_data(200_000, seed=1)})
    keep = backup(vault, {"b": sample_data(50_000, seed=2)})
    with vault.reader(point_id) as reader:
        chunk_id = next(reader.chunk_ids(reader.stream("a")))
    location = vault.parts.index.locate(chunk_id)
    assert location is not None
    vault.store.delete(location.pack_name)
    report = vault.repair_index()
    assert report.packs_lost == (location.pack_name,)
    assert set(vault.verify().damaged_points()) == {point_id}
    assert restore(vault, keep) == {"b": sample_data(50_000, seed=2)}


def test_a_pack_that_fails_to_read_in_transit_is_reported(tmp_path: Path) -> None:
    store = FaultyStore(MemoryStore())
    from .conftest import FAST_KDF, SMALL

    with Vault.create(
        store, PassphraseProvider(PASSPHRASE), SMALL, kdf=FAST_KDF, cache_dir=tmp_path / "c"
    ) as vault:
        point_id = backup(vault, {"a": sample_data(100_000, seed=1)})
        name = next(info.name for info in store.list("data/"))
        size = store.stat(name).size
        store.corrupt(name, bit=(size - 2) * 8)  # the SRPE trailer
        report = vault.repair_index()
        assert set(report.unreadable_packs) == {name}
        store.heal()
        assert vault.repair_index().ok
        assert restore(vault, point_id) == {"a": sample_data(100_000, seed=1)}


def test_repair_indexes_garbage_that_gc_then_removes(make_vault: VaultFactory) -> None:
    vault = make_vault()
    expected = _points(vault)
    crashed = vault.writer(OPTIONS)
    with crashed.open_stream("lost") as stream:
        stream.write(sample_data(5_000_000, seed=99))  # packs uploaded, never indexed
    crash_writer(crashed)
    unindexed = set(stored_packs(vault.store)) - set(indexed_packs(vault))
    assert unindexed
    report = vault.repair_index()
    assert report.packs_indexed == len(stored_packs(vault.store))
    vault.gc(grace=timedelta(0), repack_threshold=1.0)
    _check(vault, expected)
    assert_no_garbage(vault)


def test_repair_waits_for_writers(make_vault: VaultFactory) -> None:
    vault = make_vault()
    writer = vault.writer(OPTIONS)
    writer.add_stream("a", [b"x"])
    with pytest.raises(ConflictError):
        vault.repair_index()
    writer.commit()
    assert vault.repair_index().ok


def test_a_crash_at_any_point_of_repair_loses_nothing(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    vault = make_vault()
    expected = _points(vault)
    base = copy_store(vault.store)
    counting = CrashingStore(copy_store(base))
    with Vault.open(counting, PassphraseProvider(PASSPHRASE), cache_dir=tmp_path / "n") as full:
        full.repair_index()
    later = Clock()
    later.advance(timedelta(hours=1))
    for crash_at in range(1, counting.mutations + 1):
        crashed = copy_store(base)
        dying = CrashingStore(crashed, crash_at=crash_at)
        victim = Vault.open(
            dying, PassphraseProvider(PASSPHRASE), cache_dir=tmp_path / f"{crash_at}"
        )
        with victim, pytest.raises(Crash):
            victim.repair_index()
        survivor = make_vault(crashed, create=False)
        assert survivor.verify(read_data=True).ok, f"crash at mutation {crash_at}"
        _check(survivor, expected)
        survivor.lease_settings = LeaseSettings(clock=later)
        survivor.gc(grace=timedelta(0), repack_threshold=1.0)
        assert_no_garbage(survivor)
        survivor.close()

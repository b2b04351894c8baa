"""Vault settings for tests (small chunks and packs, a fast KDF) and the checks that a
vault holds exactly what its live points need, shared by the unit GC tests and the crash
and full-disk integration tests."""

from __future__ import annotations

from strongroom.keys import KdfSettings
from strongroom.storage.base import BlobStore
from strongroom.vault import Vault, VaultSettings
from strongroom.vault.format import pack_digest
from strongroom.vault.index import IndexedPack, open_fragment

FAST_KDF = KdfSettings(memory_kib=64, iterations=1, lanes=1)
SMALL = VaultSettings(
    chunk_min_size=1024, chunk_avg_size=4096, chunk_max_size=16384, pack_target_size=64 * 1024
)
PASSPHRASE = "correct horse battery staple"


def live_chunk_ids(vault: Vault) -> set[bytes]:
    """Return every chunk id the vault's points reference, list chunks included."""
    live: set[bytes] = set()
    for point in vault.points():
        with vault.reader(point.id) as reader:
            for record in reader.streams():
                live.update(reader.chunk_ids(record))
                live.update(bytes.fromhex(list_id) for list_id in record.chunk_lists or [])
    return live


def indexed_packs(vault: Vault) -> dict[bytes, IndexedPack]:
    """Return every pack the index fragments list (each must be listed once)."""
    packs: dict[bytes, IndexedPack] = {}
    for info in vault.store.list("index/"):
        for pack in open_fragment(
            vault.store.get(info.name), vault.parts.keyring.data_key, info.name
        ):
            assert pack.digest not in packs, "a pack is listed by two fragments"
            packs[pack.digest] = pack
    return packs


def stored_packs(store: BlobStore) -> dict[bytes, int]:
    """Return the packs in the store: digest -> size."""
    return {
        bytes.fromhex(digest): info.size
        for info in store.list("data/")
        if (digest := pack_digest(info.name)) is not None
    }


def assert_no_garbage(vault: Vault) -> None:
    """Stored data is exactly what the live points need: every pack is indexed, every
    indexed pack exists, and every stored chunk is live and stored once."""
    live = live_chunk_ids(vault)
    packs = indexed_packs(vault)
    stored = stored_packs(vault.store)
    assert set(stored) == set(packs)
    assert all(stored[digest] == pack.size for digest, pack in packs.items())
    chunks = [entry.chunk_id for pack in packs.values() for entry in pack.entries]
    assert len(chunks) == len(set(chunks)), "a chunk is stored twice"
    assert set(chunks) == live
    assert list(vault.store.list("locks/")) == []

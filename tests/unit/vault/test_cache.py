"""The local SQLite index cache: bounded size per chunk, sync, rebuild, recovery."""

from __future__ import annotations

import os
import random
import secrets
from pathlib import Path

from strongroom.vault.cache import IndexCache
from strongroom.vault.format import ChunkEntry
from strongroom.vault.index import IndexedPack

from .conftest import VaultFactory, backup, restore, sample_data


def _packs(count: int, per_pack: int, rng: random.Random) -> list[IndexedPack]:
    packs = []
    for _ in range(count):
        offset, entries = 44, []
        for _ in range(per_pack):
            stored = rng.randint(200_000, 2_000_000)
            entries.append(ChunkEntry(secrets.token_bytes(32), offset, stored, stored + 1000, 1))
            offset += stored
        packs.append(
            IndexedPack(
                secrets.token_bytes(32), secrets.token_bytes(32), 1, offset + 500, tuple(entries)
            )
        )
    return packs


def test_about_seventy_bytes_a_chunk(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path / "index.sqlite")
    packs = _packs(2000, 16, random.Random(1))
    for start in range(0, len(packs), 500):
        cache.add_fragment(f"index/{start}", packs[start : start + 500])
    cache.close()
    cache = IndexCache(tmp_path / "index.sqlite")  # the reopen checkpoints the WAL
    cache.close()
    size = sum(path.stat().st_size for path in tmp_path.iterdir())
    assert size / 32_000 < 100


def test_duplicate_chunks_keep_the_first_location(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path / "index.sqlite")
    first, second = _packs(2, 3, random.Random(2))
    shared = first.entries[0]
    second = IndexedPack(second.digest, second.salt, 1, second.size, (shared, *second.entries[1:]))
    cache.add_fragment("index/a", [first])
    cache.add_fragment("index/b", [second])
    cache.add_fragment("index/b", [second])  # merging twice changes nothing
    location = cache.locate(shared.chunk_id)
    assert location is not None and location.pack_digest == first.digest
    indexed = {pack.digest: pack.indexed for pack in cache.packs()}
    assert indexed == {first.digest: 3, second.digest: 2}
    assert cache.counts() == (5, 2)


def test_removed_fragments_rebuild_the_cache(make_vault: VaultFactory) -> None:
    vault = make_vault()
    kept = backup(vault, {"a": sample_data(50_000, seed=1)})
    first = vault.parts.index.known_fragments()
    gone = backup(vault, {"b": sample_data(50_000, seed=2)})
    (victim,) = vault.parts.index.known_fragments() - first
    vault.store.delete(victim)
    vault.sync_index()
    assert vault.parts.index.known_fragments() == first
    assert restore(vault, kept) == {"a": sample_data(50_000, seed=1)}
    assert vault.verify().damaged_points() == {gone: ["b"]}


def test_unreadable_cache_file_is_rebuilt(make_vault: VaultFactory, tmp_path: Path) -> None:
    vault = make_vault()
    point_id = backup(vault, {"a": b"x" * 10_000})
    path = vault.parts.index.path
    vault.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(os.urandom(4096))
    again = make_vault(vault.store, create=False)
    assert restore(again, point_id) == {"a": b"x" * 10_000}
    broken = IndexCache(path)
    assert broken.counts() == (0, 0)

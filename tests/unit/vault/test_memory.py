"""Bounded memory: a fast source does not make the writer buffer without limit."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

from strongroom.keys import PassphraseProvider
from strongroom.storage.memory import MemoryStore
from strongroom.vault import ReaderOptions, Vault, VaultSettings, WriterOptions

from .conftest import FAST_KDF, PASSPHRASE

MIB = 1024 * 1024


class _SizeOnlyStore(MemoryStore):
    """Keeps metadata objects but only the sizes of packs, so the test measures the writer."""

    def __init__(self) -> None:
        super().__init__()
        self.pack_bytes = 0

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        if name.startswith("data/"):
            self.pack_bytes += len(data)
            return
        super().put(name, data, exclusive=exclusive)


def _source(total: int) -> Iterator[bytes]:
    rng = random.Random(3)
    block = rng.randbytes(MIB)
    for number in range(total // MIB):
        # every block differs (no dedup), half of it compresses
        yield number.to_bytes(8, "big") + block[8 : MIB // 2] + bytes(MIB // 2)


def test_writer_memory_stays_bounded(tmp_path: object) -> None:
    store = _SizeOnlyStore()
    settings = VaultSettings(
        chunk_min_size=64 * 1024,
        chunk_avg_size=256 * 1024,
        chunk_max_size=1 * MIB,
        pack_target_size=4 * MIB,
    )
    total = 200 * MIB
    with Vault.create(store, PassphraseProvider(PASSPHRASE), settings, kdf=FAST_KDF) as vault:
        tracemalloc.start()
        try:
            with vault.writer(WriterOptions(workers=2, uploads=2)) as writer:
                writer.add_stream("big", _source(total))
                point_id = writer.commit()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        stats = vault.point(point_id).stats
    assert stats.logical_size == total
    assert store.pack_bytes > total // 3
    # window 8 MiB + 6 chunks in flight + 1 pack filling + 2 sealing: well under 64 MiB
    assert peak < 64 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_reader_memory_stays_bounded() -> None:
    store = MemoryStore()
    settings = VaultSettings(
        chunk_min_size=64 * 1024,
        chunk_avg_size=256 * 1024,
        chunk_max_size=1 * MIB,
        pack_target_size=4 * MIB,
    )
    total = 64 * MIB
    with Vault.create(store, PassphraseProvider(PASSPHRASE), settings, kdf=FAST_KDF) as vault:
        with vault.writer(WriterOptions(workers=2)) as writer:
            writer.add_stream("big", _source(total))
            point_id = writer.commit()
        options = ReaderOptions(threads=4, prefetch_bytes=8 * MIB, segment_bytes=2 * MIB)
        tracemalloc.start()
        try:
            with vault.reader(point_id, options) as reader:
                size = sum(len(piece) for piece in reader.iter_stream("big"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert size == total
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB"

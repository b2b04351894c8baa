"""Pack builders encrypt chunks as they come into one buffer that later packs reuse; a
pack handed out must never change afterwards, whoever still holds it."""

from __future__ import annotations

import hashlib
import random
import secrets

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import IntegrityError
from strongroom.vault.crypto import GenerationKeys, compress, object_key
from strongroom.vault.format import FLAG_ZSTD, MAGIC_PACK
from strongroom.vault.pack import PackBuilder, SealedPack, open_chunk, parse_pack

KEYS = GenerationKeys(1, secrets.token_bytes(32), secrets.token_bytes(32))


def _data_key(generation: int) -> bytes:
    if generation != 1:
        raise IntegrityError(f"no generation {generation}")
    return KEYS.data_key


def _fill(builder: PackBuilder, chunks: list[bytes]) -> SealedPack:
    for data in chunks:
        frame = compress(data, 3)
        if len(frame) < len(data):
            builder.add(KEYS.chunk_id(data), frame, FLAG_ZSTD, len(data))
        else:
            builder.add(KEYS.chunk_id(data), memoryview(data), 0, len(data))
    return builder.seal()


def _check(sealed: SealedPack, chunks: list[bytes]) -> None:
    assert sealed.name.endswith(hashlib.sha256(sealed.data).hexdigest())
    header = parse_pack(sealed.data, _data_key, "pack")
    assert header.entries == sealed.entries
    key = object_key(KEYS.data_key, header.salt, MAGIC_PACK)
    for entry, data in zip(header.entries, chunks, strict=True):
        piece = sealed.data[entry.offset : entry.offset + entry.stored_length]
        assert open_chunk(key, entry, piece, KEYS, "pack") == data


def _chunks(rng: random.Random, count: int, size: int) -> list[bytes]:
    return [
        rng.randbytes(rng.randint(1, size)) if rng.random() < 0.5 else bytes(rng.randint(1, size))
        for _ in range(count)
    ]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), sizes=st.lists(st.integers(1, 12), min_size=2, max_size=5))
def test_reused_buffers_never_change_packs_handed_out(seed: int, sizes: list[int]) -> None:
    rng = random.Random(seed)
    builder = PackBuilder(KEYS)
    kept: list[tuple[SealedPack, bytes, list[bytes]]] = []
    for count in sizes:
        chunks = _chunks(rng, count, 300_000)
        sealed = _fill(builder, chunks)
        _check(sealed, chunks)
        kept.append((sealed, bytes(bytearray(sealed.data)), chunks))
        builder = PackBuilder(KEYS, builder.buffer)  # the next pack reuses the buffer
    for sealed, copy, chunks in kept:
        assert sealed.data == copy
        _check(sealed, chunks)

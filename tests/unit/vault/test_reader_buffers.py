"""Restores decompress into buffers reused from segment to segment: the bytes handed out
stay right, and a damaged chunk is still named and never written."""

from __future__ import annotations

import io

import pytest

from strongroom.errors import IntegrityError
from strongroom.storage.memory import MemoryStore
from strongroom.vault import ReaderOptions
from strongroom.vault.fetch import SegmentBuffers

from .conftest import SMALL, VaultFactory, backup, sample_data

# Tiny segments and read-ahead: every buffer is reused many times within one stream.
TIGHT = ReaderOptions(threads=4, prefetch_bytes=48 * 1024, segment_bytes=16 * 1024)
STREAMS = {f"s{number}": sample_data(150_000 + number * 7_000, seed=number) for number in range(4)}


def test_copy_open_and_iterate_agree_while_buffers_are_reused(make_vault: VaultFactory) -> None:
    vault = make_vault()
    point_id = backup(vault, STREAMS)
    with vault.reader(point_id, TIGHT) as reader:
        for name, data in STREAMS.items():
            out = io.BytesIO()
            assert reader.copy_stream(name, out) == len(data)
            assert out.getvalue() == data
            with reader.open_stream(name) as stream:
                assert stream.read() == data
            pieces = list(reader.iter_stream(name))  # kept: each piece is its own copy
            assert len(pieces) > 4
            assert b"".join(pieces) == data


def test_uncompressed_chunks_are_decrypted_in_place(make_vault: VaultFactory) -> None:
    vault = make_vault(settings=SMALL.model_copy(update={"compression": "none"}))
    point_id = backup(vault, STREAMS)
    with vault.reader(point_id, TIGHT) as reader:
        for name, data in STREAMS.items():
            out = io.BytesIO()
            reader.copy_stream(name, out)
            assert out.getvalue() == data


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_a_damaged_chunk_mid_stream_is_named_and_nothing_after_it_is_written(
    make_vault: VaultFactory, compression: str
) -> None:
    vault = make_vault(settings=SMALL.model_copy(update={"compression": compression}))
    data = STREAMS["s3"]
    point_id = backup(vault, {"s3": data})
    store = vault.store
    assert isinstance(store, MemoryStore)
    with vault.reader(point_id, TIGHT) as reader:
        chunk_ids = list(reader.chunk_ids(reader.stream("s3")))
    victim = len(chunk_ids) // 2
    location = vault.parts.index.locate(chunk_ids[victim])
    assert location is not None
    damaged = bytearray(store.get(location.pack_name))
    damaged[location.entry.offset + 5] ^= 0x01
    store.put(location.pack_name, bytes(damaged))
    before_victim = sum(
        found.entry.raw_length
        for found in (vault.parts.index.locate(chunk_id) for chunk_id in chunk_ids[:victim])
        if found is not None
    )

    out = io.BytesIO()
    with vault.reader(point_id, TIGHT) as reader, pytest.raises(IntegrityError) as raised:
        reader.copy_stream("s3", out)
    assert location.pack_name in str(raised.value)
    assert chunk_ids[victim].hex() in str(raised.value)
    written = out.getvalue()
    assert len(written) <= before_victim
    assert written == data[: len(written)]


def test_segment_buffers_hand_back_the_smallest_fit_and_keep_a_few() -> None:
    buffers = SegmentBuffers(keep=2)
    small, large = buffers.take(10), buffers.take(5 << 20)
    assert len(small) >= 10 and len(large) >= 5 << 20
    buffers.give(large)
    buffers.give(small)
    assert buffers.take(5) is small
    assert buffers.take(3 << 20) is large
    for _ in range(4):
        buffers.give(bytearray(1 << 20))
    buffers.give(bytearray(9 << 20))  # over the limit: the largest goes
    assert len(buffers.take(2 << 20)) < 9 << 20

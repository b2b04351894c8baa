"""Streaming FastCDC cuts exactly where chunking the whole stream at once would."""

from __future__ import annotations

import random

from fastcdc.fastcdc_cy import fastcdc_cy
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.vault.chunker import StreamChunker


def _whole(data: bytes, low: int, average: int, high: int) -> list[bytes]:
    return [
        data[cut.offset : cut.offset + cut.length]
        for cut in fastcdc_cy(data, min_size=low, avg_size=average, max_size=high)
    ]


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 300_000),
    seed=st.integers(0, 2**32),
    pieces=st.lists(st.integers(1, 70_000), min_size=1, max_size=20),
)
def test_streaming_matches_whole_buffer(size: int, seed: int, pieces: list[int]) -> None:
    data = random.Random(seed).randbytes(size)
    chunker = StreamChunker(256, 1024, 4096)
    chunker.window = 10_000  # a small window exercises the carry-over path often
    out: list[bytes] = []
    position, turn = 0, 0
    while position < size:
        step = pieces[turn % len(pieces)]
        out.extend(chunker.feed(data[position : position + step]))
        position += step
        turn += 1
    out.extend(chunker.finish())
    assert out == _whole(data, 256, 1024, 4096)


def test_chunk_sizes_are_bounded() -> None:
    data = random.Random(1).randbytes(3_000_000) + bytes(1_000_000)
    chunker = StreamChunker(16_384, 65_536, 262_144)
    chunks = [*chunker.feed(data), *chunker.finish()]
    assert b"".join(chunks) == data
    assert all(len(chunk) <= 262_144 for chunk in chunks)
    assert all(len(chunk) >= 16_384 for chunk in chunks[:-1])
    average = len(data) / len(chunks)
    assert 30_000 < average < 150_000


def test_empty_stream_has_no_chunks() -> None:
    chunker = StreamChunker(256, 1024, 4096)
    assert [*chunker.feed(b""), *chunker.finish()] == []

"""Writers cut exactly where FastCDC over the whole stream cuts, with or without replaying
the previous version's chunk boundaries, through small windows and any write sizes."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastcdc.fastcdc_cy import fastcdc_cy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.errors import IntegrityError
from strongroom.vault import Vault, chunker
from strongroom.vault.manifest import INLINE_CHUNKS
from strongroom.vault.replay import GIVE_UP, ChunkReplay

from .conftest import OPTIONS, SMALL, VaultFactory, restore, sample_data


@pytest.fixture(autouse=True)
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows of 40 KB (2.4 x the largest chunk) make every stream cross many of them."""
    monkeypatch.setattr(chunker, "MIN_WINDOW", 40_000)


def _whole(data: bytes) -> list[int]:
    return [
        cut.length
        for cut in fastcdc_cy(
            data,
            min_size=SMALL.chunk_min_size,
            avg_size=SMALL.chunk_avg_size,
            max_size=SMALL.chunk_max_size,
        )
    ]


def _write(vault: Vault, data: bytes, pieces: list[int] | None = None) -> tuple[str, int]:
    """Back up ``data`` as stream "s" (in pieces of the given sizes, or from a file
    object); returns the point id and how many chunks were replayed."""
    with vault.writer(OPTIONS) as writer:
        with writer.open_stream("s") as stream:
            if pieces is None:
                stream.write_from(io.BytesIO(data))
            else:
                position, turn = 0, 0
                while position < len(data):
                    step = pieces[turn % len(pieces)]
                    stream.write(data[position : position + step])
                    position, turn = position + step, turn + 1
        replayed = stream.replayed_chunks
        return writer.commit(), replayed


def _sizes(vault: Vault, point_id: str) -> list[int]:
    with vault.reader(point_id) as reader:
        ids = list(reader.chunk_ids(reader.stream("s")))
    sizes = []
    for chunk_id in ids:
        location = vault.parts.index.locate(chunk_id)
        assert location is not None
        sizes.append(location.entry.raw_length)
    return sizes


def _edit(data: bytes, rng: random.Random, edits: int) -> bytes:
    out = bytearray(data)
    for _ in range(edits):
        kind = rng.choice(["insert", "delete", "replace"])
        position = rng.randrange(len(out) + 1)
        length = rng.randint(1, 30_000)
        if kind == "insert":
            out[position:position] = rng.randbytes(length)
        elif kind == "delete":
            del out[position : position + length]
        else:
            out[position : position + length] = rng.randbytes(min(length, len(out) - position))
    return bytes(out)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32),
    edits=st.integers(0, 4),
    pieces=st.one_of(st.none(), st.lists(st.integers(1, 50_000), min_size=1, max_size=6)),
    tail=st.sampled_from(["same", "longer", "shorter"]),
)
def test_cuts_match_fastcdc_with_replay(
    make_vault: VaultFactory, seed: int, edits: int, pieces: list[int] | None, tail: str
) -> None:
    rng = random.Random(seed)
    before = sample_data(rng.randint(400_000, 800_000), seed=seed)
    after = _edit(before, rng, edits)
    if tail == "longer":
        after += rng.randbytes(rng.randint(1, 20_000))
    elif tail == "shorter":
        after = after[: len(after) - rng.randint(1, 20_000)]
    vault = make_vault()
    first, _ = _write(vault, before, pieces)
    assert _sizes(vault, first) == _whole(before)
    second, replayed = _write(vault, after, pieces)
    assert _sizes(vault, second) == _whole(after)
    assert restore(vault, second) == {"s": after}
    if edits == 0 and tail == "same" and len(_whole(after)) > INLINE_CHUNKS:
        assert replayed == len(_whole(after))  # hints are kept for long streams only


def test_unchanged_stream_is_replayed_and_stores_nothing(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(800_000, seed=3)
    first, replayed = _write(vault, data)
    assert replayed == 0  # nothing to replay yet
    second, replayed = _write(vault, data)
    assert replayed == len(_whole(data))
    stats = vault.point(second).stats
    assert (stats.new_chunk_count, stats.new_stored_size) == (0, 0)
    assert _sizes(vault, second) == _sizes(vault, first)


def test_a_hint_whose_chunks_are_gone_costs_nothing_but_time(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(600_000, seed=4)
    first, _ = _write(vault, data)
    vault.delete_point(first)
    vault.gc(grace=timedelta(0))
    second, replayed = _write(vault, data)
    assert replayed == 0
    assert _sizes(vault, second) == _whole(data)
    assert restore(vault, second) == {"s": data}


def _replay(ids: list[bytes], lengths: dict[bytes, int], lookahead: int = 8) -> ChunkReplay:
    def raw_lengths(batch: object) -> dict[bytes, int]:
        return lengths

    source: Iterator[bytes] = iter(ids)
    return ChunkReplay(source, raw_lengths, lookahead=lookahead)


def test_replay_steps_resyncs_and_marks_the_last_chunk() -> None:
    ids = [bytes([n]) * 32 for n in range(6)]
    replay = _replay(ids, {chunk_id: 100 + n for n, chunk_id in enumerate(ids)})
    assert replay.expected() == (ids[0], 100, False)
    replay.matched()
    replay.observe(b"new" * 11 + b"!")  # a changed chunk: out of step
    assert replay.expected() is None
    replay.observe(ids[3])  # found further on: back in step after it
    assert replay.expected() == (ids[4], 104, False)
    replay.matched()
    assert replay.expected() == (ids[5], 105, True)
    replay.matched()
    assert replay.expected() is None


def test_replay_without_lengths_or_with_a_failing_source_stops() -> None:
    ids = [bytes([n]) * 32 for n in range(3)]
    assert _replay(ids, {}).expected() is None

    def broken() -> Iterator[bytes]:
        yield ids[0]
        raise IntegrityError("list chunk damaged")

    replay = ChunkReplay(broken(), lambda batch: {ids[0]: 10})
    assert replay.expected() is None


def test_unrelated_data_under_the_same_name_stops_the_replay(make_vault: VaultFactory) -> None:
    vault = make_vault()
    _write(vault, sample_data(600_000, seed=5))
    other = sample_data(3_000_000, seed=6)  # more than GIVE_UP new chunks
    point_id, replayed = _write(vault, other)
    assert replayed == 0
    assert _sizes(vault, point_id) == _whole(other)
    assert restore(vault, point_id) == {"s": other}


def test_replay_gives_up_after_many_new_chunks() -> None:
    ids = [bytes([n]) * 32 for n in range(3)]
    replay = _replay(ids, dict.fromkeys(ids, 10))
    for number in range(GIVE_UP + 1):
        assert replay.active
        replay.observe(b"\xff" + number.to_bytes(31, "big"))  # never one of ids
    assert not replay.active
    assert replay.expected() is None

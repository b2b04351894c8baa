"""The record format of Kafka partition streams: round trips, null versus empty, damage."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import IntegrityError
from strongroom.sources.kafka.records import (
    ContentHash,
    Record,
    content_of,
    encode,
    hash_head,
    read_records,
)

maybe_bytes = st.none() | st.binary(max_size=40)
records = st.builds(
    Record,
    offset=st.integers(0, 2**62),
    timestamp_type=st.integers(0, 2),
    timestamp=st.integers(-1, 2**50),
    key=maybe_bytes,
    value=maybe_bytes,
    headers=st.lists(st.tuples(st.text(max_size=10), maybe_bytes), max_size=4),
)


@given(st.lists(records, max_size=20))
def test_records_come_back_as_written(written: list[Record]) -> None:
    stream = io.BytesIO(b"".join(encode(record) for record in written))
    assert list(read_records(stream, "topics/t/0.records")) == written


def test_null_and_empty_differ_in_content_and_hash() -> None:
    tombstone = Record(0, 1, 5, b"k", None, [])
    empty = Record(0, 1, 5, b"k", b"", [])
    assert content_of(tombstone) != content_of(empty)
    hashes = []
    for record in (tombstone, empty):
        content = ContentHash()
        content.add(content_of(record))
        hashes.append(content.hexdigest())
    assert hashes[0] != hashes[1]


def test_the_content_leaves_the_offset_out() -> None:
    assert content_of(Record(1, 1, 5, b"k", b"v", [("h", b"1")])) == content_of(
        Record(99, 1, 5, b"k", b"v", [("h", b"1")])
    )


def test_a_cut_stream_is_an_integrity_error_naming_it() -> None:
    frame = encode(Record(0, 1, 5, b"k", b"v", [("h", None)]))
    with pytest.raises(IntegrityError, match=r"topics/t/0\.records"):
        list(read_records(io.BytesIO(frame[:-3]), "topics/t/0.records"))


def test_the_stream_format_is_the_one_points_were_written_with() -> None:
    """The bytes of a frame as every point since the first was written (format version 1):
    a change here would leave older points unreadable."""
    record = Record(7, 1, 1_700_000_000_000, None, b"", [("h", b"1"), ("h", None)])
    written_by_version_1 = bytes.fromhex(
        "00000030" "0000000000000007" "01" "0000018bcfe56800" "ffffffff" "00000000"
        "00000002" "00000001" "68" "00000001" "31" "00000001" "68" "ffffffff"
    )  # fmt: skip
    assert encode(record) == written_by_version_1
    assert list(read_records(io.BytesIO(written_by_version_1 * 2), "s")) == [record, record]


@given(st.lists(records, min_size=1, max_size=5), st.data())
def test_a_damaged_length_is_an_integrity_error_never_a_wrong_record(
    written: list[Record], data: st.DataObject
) -> None:
    stream = bytearray(b"".join(encode(record) for record in written))
    position = data.draw(st.integers(0, len(stream) - 4))
    stream[position : position + 4] = data.draw(
        st.sampled_from([b"\xff\xff\xff\xfe", b"\x7f\xff\xff\xff"])
    )
    try:
        decoded = list(read_records(io.BytesIO(bytes(stream)), "topics/t/0.records"))
    except IntegrityError:
        return
    # A length that happened to land on a field where the value still parses must not
    # change what a record says about its own frame: the frames still add up exactly.
    assert b"".join(encode(record) for record in decoded) == bytes(stream)


def test_a_batch_hashes_the_same_as_records_one_by_one() -> None:
    contents = [content_of(Record(n, 1, n, b"k", bytes(n), [("h", b"v")])) for n in range(5)]
    single = ContentHash()
    for content in contents:
        single.add(content)
    joined = ContentHash()
    joined.add_joined(b"".join(hash_head(len(c)) + c for c in contents), len(contents))
    assert (joined.count, joined.hexdigest()) == (single.count, single.hexdigest())

"""The record format of Kafka partition streams: round trips, null versus empty, damage."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import IntegrityError
from strongroom.sources.kafka.records import ContentHash, Record, content_of, encode, read_records

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

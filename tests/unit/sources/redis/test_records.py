"""The key stream format of logical Redis backups: what is written reads back, exactly."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import IntegrityError
from strongroom.sources.redis import records

# A real DUMP payload of the string "hello" from Redis 7.0 (type 0, RDB version 10, CRC64).
HELLO = b"\x00\x05hello\n\x00cr\xdfve4 \n"

record_strategy = st.builds(
    records.Record,
    key=st.binary(max_size=300),
    expire_at=st.one_of(st.just(records.NO_EXPIRY), st.integers(0, 2**62)),
    payload=st.binary(min_size=10, max_size=2000),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


@given(st.lists(record_strategy, max_size=30), st.lists(st.integers(0, 10**6), max_size=8))
def test_records_read_back_whatever_the_block_boundaries(
    written: list[records.Record], cuts: list[int]
) -> None:
    data = records.MAGIC + b"".join(
        records.encode(record.key, record.expire_at, record.payload) for record in written
    )

    assert list(records.decode(split(data, cuts), "db/0.keys")) == written


def test_a_truncated_stream_is_an_integrity_error_naming_it() -> None:
    data = records.MAGIC + records.encode(b"key", records.NO_EXPIRY, HELLO)

    with pytest.raises(IntegrityError, match=r"db/3\.keys ends inside a record"):
        list(records.decode([data[:-1]], "db/3.keys"))
    with pytest.raises(IntegrityError, match="not a strongroom Redis key stream"):
        list(records.decode([b"REDIS0010" + data], "db/3.keys"))
    with pytest.raises(IntegrityError, match="truncated"):
        list(records.decode([], "db/3.keys"))


def test_type_and_version_are_read_from_the_payload() -> None:
    assert records.payload_type(HELLO) == "string"
    assert records.payload_version(HELLO) == 10
    assert records.payload_type(b"\x15" + HELLO[1:]) == "stream"
    assert records.payload_type(b"\x63" + HELLO[1:]) == "unknown-99"

"""RDB checks: header, auxiliary fields, EOF opcode and CRC64, fed in any block sizes."""

from __future__ import annotations

import struct

import anycrc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import IntegrityError
from strongroom.sources.redis.rdb import RdbCheck, parse_aux
from strongroom.sources.redis.restore import payload_intact

CRC = anycrc.Model("CRC64-REDIS")


def aux(key: bytes, value: bytes) -> bytes:
    return b"\xfa" + bytes([len(key)]) + key + bytes([len(value)]) + value


def make_rdb(body: bytes = b"", *, version: bytes = b"0010") -> bytes:
    content = (
        b"REDIS"
        + version
        + aux(b"redis-ver", b"7.0.15")
        + b"\xfa\x0aredis-bits\xc0\x40"  # an integer-encoded value: 64
        + body
        + b"\xff"
    )
    return content + struct.pack("<Q", CRC.calc(content))


def check(data: bytes, sizes: list[int]) -> RdbCheck:
    checker = RdbCheck(name="test.rdb")
    position = 0
    for size in sizes:
        checker.feed(data[position : position + size])
        position += size
    checker.feed(data[position:])
    return checker


def test_crc64_is_redis_s_own() -> None:
    assert CRC.calc(b"123456789") == 0xE9C6D914C4B8D9CA  # the value in Redis's crc64.c


@given(st.binary(max_size=3000), st.lists(st.integers(1, 50), max_size=40))
def test_a_whole_rdb_passes_whatever_the_blocks(body: bytes, sizes: list[int]) -> None:
    data = make_rdb(b"\xfe\x00" + body)

    facts = check(data, sizes).finish()

    assert facts.version == 10
    assert facts.size == len(data)
    assert facts.crc64 == f"{struct.unpack('<Q', data[-8:])[0]:016x}"
    assert facts.aux == {"redis-ver": "7.0.15", "redis-bits": "64"}


def test_damage_anywhere_fails_the_check() -> None:
    data = bytearray(make_rdb(b"\xfe\x00" + bytes(range(200))))
    data[100] ^= 0x10

    with pytest.raises(IntegrityError, match=r"test\.rdb fails its CRC64 check"):
        check(bytes(data), [7, 13]).finish()


def test_truncated_or_foreign_files_fail() -> None:
    data = make_rdb(b"\xfe\x00abc")

    with pytest.raises(IntegrityError, match="EOF opcode"):
        check(data[:-3], []).finish()
    with pytest.raises(IntegrityError, match="RDB header"):
        check(b"NOTREDIS" + data, []).finish()
    with pytest.raises(IntegrityError, match="RDB header"):
        check(b"", []).finish()


def test_a_server_without_checksums_writes_zero_and_is_recorded_as_none() -> None:
    content = b"REDIS0010" + b"\xff"

    assert check(content + b"\x00" * 8, []).finish().crc64 is None


def test_aux_parsing_stops_at_the_first_other_opcode() -> None:
    head = b"REDIS0010" + aux(b"a", b"1") + b"\xfe\x00" + aux(b"b", b"2")

    assert parse_aux(head) == {"a": "1"}


def test_a_payload_s_own_crc_tells_damage_apart() -> None:
    hello = b"\x00\x05hello\n\x00cr\xdfve4 \n"  # DUMP of "hello" from Redis 7.0

    assert payload_intact(hello)
    assert not payload_intact(hello.replace(b"hello", b"jello"))

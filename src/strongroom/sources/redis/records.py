"""The record format of a logical Redis backup: one stream per database, keys in SCAN order.

A stream starts with the 8 bytes ``SRREDIS1`` and holds records back to back::

    key length      uint32, big-endian
    key             the key's bytes (binary-safe)
    expire at       int64, big-endian: absolute Unix time in milliseconds, -1 for none
    payload length  uint32, big-endian
    payload         the reply of DUMP for the key

A DUMP payload is Redis's own serialisation of one value: its first byte is the RDB
object type, its last 10 bytes the RDB version (uint16, little-endian) and a CRC64 of
the rest. :func:`payload_type` and :func:`payload_version` read those without parsing the
value. The format is documented in ``docs/sources/redis.md``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from strongroom.errors import IntegrityError

MAGIC: Final = b"SRREDIS1"
NO_EXPIRY: Final = -1
_HEAD: Final = struct.Struct(">I")
_TAIL: Final = struct.Struct(">qI")
_VERSION: Final = struct.Struct("<H")

RDB_TYPES: Final[dict[int, str]] = {
    0: "string",
    1: "list",
    2: "set",
    3: "zset",
    4: "hash",
    5: "zset",
    6: "module",
    7: "module",
    9: "hash",
    10: "list",
    11: "set",
    12: "zset",
    13: "hash",
    14: "list",
    15: "stream",
    16: "hash",
    17: "zset",
    18: "list",
    19: "stream",
    20: "set",
    21: "stream",
}
"""RDB object type byte -> the type name ``TYPE`` answers (every encoding of a type)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One key: its name, absolute expiry in ms (``NO_EXPIRY`` for none) and DUMP payload."""

    key: bytes
    expire_at: int
    payload: bytes

    @property
    def type_name(self) -> str:
        """The key's type, read from the payload's first byte."""
        return payload_type(self.payload)


def payload_type(payload: bytes) -> str:
    """Return the type name of a DUMP payload (``unknown-N`` for a type byte not known)."""
    code = payload[0] if payload else -1
    name = RDB_TYPES.get(code)
    return name if name is not None else f"unknown-{code}"


def payload_version(payload: bytes) -> int:
    """Return the RDB version a DUMP payload was written with."""
    if len(payload) < 10:
        raise IntegrityError("a DUMP payload is shorter than its 10-byte footer")
    return int(_VERSION.unpack_from(payload, len(payload) - 10)[0])


def encode(key: bytes, expire_at: int, payload: bytes) -> bytes:
    """Return one record's bytes."""
    return b"".join((_HEAD.pack(len(key)), key, _TAIL.pack(expire_at, len(payload)), payload))


def decode(blocks: Iterable[bytes], name: str) -> Iterator[Record]:
    """Yield the records of a stream given as blocks of bytes.

    Raises ``IntegrityError`` naming the stream when it does not start with the magic
    bytes or ends inside a record. Holds at most one block plus one record in memory.
    """
    buffer = bytearray()
    position = 0
    started = False
    for block in blocks:
        if position:
            del buffer[:position]
            position = 0
        buffer += block
        if not started:
            if len(buffer) < len(MAGIC):
                continue
            if bytes(buffer[: len(MAGIC)]) != MAGIC:
                raise IntegrityError(f"stream {name} is not a strongroom Redis key stream")
            position = len(MAGIC)
            started = True
        view = memoryview(buffer)
        end = len(buffer)
        while True:
            if end - position < 4:
                break
            key_length = _HEAD.unpack_from(view, position)[0]
            tail_at = position + 4 + key_length
            if end - tail_at < 12:
                break
            expire_at, payload_length = _TAIL.unpack_from(view, tail_at)
            payload_at = tail_at + 12
            if end - payload_at < payload_length:
                break
            yield Record(
                bytes(view[position + 4 : tail_at]),
                expire_at,
                bytes(view[payload_at : payload_at + payload_length]),
            )
            position = payload_at + payload_length
        view.release()
    if not started or position != len(buffer):
        raise IntegrityError(f"stream {name} ends inside a record (truncated)")

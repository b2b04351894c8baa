"""The record format of a Kafka partition's stream, and its ordered content hash.

A stream is a sequence of frames, one per record, in offset order. Integers are
big-endian; ``bytes`` is a signed 32-bit length then the data, length -1 for null (so a
null key or value, a tombstone, is kept apart from an empty one)::

    frame   := u32 length-of-body, body
    body    := i64 offset, i8 timestamp type, i64 timestamp (ms), bytes key, bytes value,
               u32 header count, (bytes name, bytes value) * count

Timestamp types are librdkafka's: 0 none, 1 create time, 2 log append time. Headers keep
their order and duplicates. The *content* of a record is its body without the offset: the
ordered hash of a partition (:class:`ContentHash`) covers the contents, so a restored
partition, whose offsets differ, hashes the same as the backed-up one.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from strongroom.errors import IntegrityError
from strongroom.sources.base import ReadableStream

Header = tuple[str, bytes | None]

_LENGTH: Final = struct.Struct(">I")
_FIXED: Final = struct.Struct(">qbq")
_TIME: Final = struct.Struct(">bq")
_SIZE: Final = struct.Struct(">i")
_BLOCK: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as backed up: where it was, when, and what it holds."""

    offset: int
    timestamp_type: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header]


def _bytes(data: bytes | None) -> bytes:
    if data is None:
        return _SIZE.pack(-1)
    return _SIZE.pack(len(data)) + data


def content_of(record: Record) -> bytes:
    """Return a record's content: its body without the offset (see the module docstring)."""
    parts = [
        _TIME.pack(record.timestamp_type, record.timestamp),
        _bytes(record.key),
        _bytes(record.value),
        _LENGTH.pack(len(record.headers)),
    ]
    for name, value in record.headers:
        parts.append(_bytes(name.encode("utf-8")))
        parts.append(_bytes(value))
    return b"".join(parts)


def encode(record: Record) -> bytes:
    """Return the frame of one record."""
    body = record.offset.to_bytes(8, "big", signed=True) + content_of(record)
    return _LENGTH.pack(len(body)) + body


class ContentHash:
    """The ordered SHA-256 of a partition's record contents, and their count."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.count = 0

    def add(self, content: bytes) -> None:
        """Add the content of the next record (see :func:`content_of`)."""
        self._digest.update(_LENGTH.pack(len(content)))
        self._digest.update(content)
        self.count += 1

    def hexdigest(self) -> str:
        """The hash of every content added so far, in order."""
        return self._digest.hexdigest()


class _Cursor:
    """Reads a body field by field; raises ``IntegrityError`` (naming the stream) past its end."""

    def __init__(self, body: bytes, name: str) -> None:
        self.body = body
        self.position = 0
        self.name = name

    def take(self, size: int) -> bytes:
        end = self.position + size
        if size < 0 or end > len(self.body):
            raise IntegrityError(f"stream {self.name} holds a damaged record frame")
        data = self.body[self.position : end]
        self.position = end
        return data

    def sized(self) -> bytes | None:
        (size,) = _SIZE.unpack(self.take(4))
        return None if size == -1 else self.take(size)


def decode(body: bytes, name: str) -> Record:
    """Parse one frame's body; raises ``IntegrityError`` naming stream ``name`` if damaged."""
    cursor = _Cursor(body, name)
    offset, timestamp_type, timestamp = _FIXED.unpack(cursor.take(_FIXED.size))
    key = cursor.sized()
    value = cursor.sized()
    (count,) = _LENGTH.unpack(cursor.take(4))
    headers: list[Header] = []
    for _ in range(count):
        header_name = cursor.sized()
        if header_name is None:
            raise IntegrityError(f"stream {name} holds a header without a name")
        headers.append((header_name.decode("utf-8"), cursor.sized()))
    if cursor.position != len(body):
        raise IntegrityError(f"stream {name} holds a record frame with trailing bytes")
    return Record(offset, timestamp_type, timestamp, key, value, headers)


def read_records(stream: ReadableStream, name: str) -> Iterator[Record]:
    """Yield the records of one stream in order; ``IntegrityError`` on a cut or damaged frame."""
    buffer = bytearray()
    position = 0
    while True:
        block = stream.read(_BLOCK)
        if block:
            del buffer[:position]
            position = 0
            buffer += block
        while len(buffer) - position >= 4:
            (size,) = _LENGTH.unpack_from(buffer, position)
            if len(buffer) - position - 4 < size:
                break
            start = position + 4
            yield decode(bytes(buffer[start : start + size]), name)
            position = start + size
        if not block:
            if position != len(buffer):
                raise IntegrityError(f"stream {name} ends in the middle of a record frame")
            return

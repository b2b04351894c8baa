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

import functools
import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from strongroom.errors import IntegrityError
from strongroom.sources.base import ReadableStream

Header = tuple[str, bytes | None]

_LENGTH: Final = struct.Struct(">I")
_SIZE: Final = struct.Struct(">i")
_CONTENT_HEAD: Final = struct.Struct(">bqi")
"""Timestamp type, timestamp and key length: the fixed start of a content."""
_FRAME_HEAD: Final = struct.Struct(">Iq")
"""Body length and offset: the fixed start of a frame."""
_BODY_HEAD: Final = struct.Struct(">qbqi")
"""Offset, timestamp type, timestamp and key length: the fixed start of a body."""
_NULL: Final = _SIZE.pack(-1)
_NO_HEADERS: Final = _LENGTH.pack(0)
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


RecordTuple = tuple[int, int, int, bytes | None, bytes | None, list[Header]]
"""A decoded record as a plain tuple (offset, timestamp type, timestamp, key, value,
headers): what the restore's loop reads, without building a :class:`Record` per record."""


def _headers(headers: Sequence[Header]) -> bytes:
    parts = [_LENGTH.pack(len(headers))]
    for name, value in headers:
        encoded = name.encode("utf-8")
        parts.append(_SIZE.pack(len(encoded)))
        parts.append(encoded)
        if value is None:
            parts.append(_NULL)
        else:
            parts.append(_SIZE.pack(len(value)))
            parts.append(value)
    return b"".join(parts)


@functools.lru_cache(maxsize=256)
def _cached_headers(headers: tuple[Header, ...]) -> bytes:
    """The encoded headers, cached: the records of a topic mostly repeat the same headers,
    and encoding them costs more than the rest of a record's content."""
    return _headers(headers)


def content_bytes(
    timestamp_type: int,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header] | None,
) -> bytes:
    """Return the content of a record given field by field (see the module docstring).

    The backup calls this once per record, so it packs with few calls; ``headers`` None
    is the same as no headers (what the client returns for a record without any).
    """
    head = _CONTENT_HEAD.pack(timestamp_type, timestamp, -1 if key is None else len(key))
    size = _NULL if value is None else _SIZE.pack(len(value))
    return b"".join(
        (
            head,
            key or b"",
            size,
            value or b"",
            _cached_headers(tuple(headers)) if headers else _NO_HEADERS,
        )
    )


def content_of(record: Record) -> bytes:
    """Return a record's content: its body without the offset (see the module docstring)."""
    return content_bytes(
        record.timestamp_type, record.timestamp, record.key, record.value, record.headers
    )


def frame_head(offset: int, content_size: int) -> bytes:
    """Return the bytes that precede a record's content in its frame (length and offset)."""
    return _FRAME_HEAD.pack(content_size + 8, offset)


def hash_head(content_size: int) -> bytes:
    """Return the bytes that precede a content in the ordered hash (its length)."""
    return _LENGTH.pack(content_size)


def encode(record: Record) -> bytes:
    """Return the frame of one record."""
    content = content_of(record)
    return frame_head(record.offset, len(content)) + content


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

    def add_joined(self, joined: bytes, count: int) -> None:
        """Add ``count`` records at once: their :func:`hash_head` and content, concatenated.

        The digest is the same as ``count`` calls of :meth:`add`; one call hashes a whole
        batch (the hash releases the GIL for large inputs, a call per record does not).
        """
        self._digest.update(joined)
        self.count += count

    def hexdigest(self) -> str:
        """The hash of every content added so far, in order."""
        return self._digest.hexdigest()


def _damaged(name: str) -> IntegrityError:
    return IntegrityError(f"stream {name} holds a damaged record frame")


@functools.lru_cache(maxsize=256)
def _header_section(section: bytes, name: str) -> tuple[Header, ...]:
    """Parse the headers that end a body (count, then name and value of each), cached.

    The records of a topic mostly repeat the same headers; parsing them costs more than
    the rest of a record. Raises ``IntegrityError`` naming stream ``name`` if damaged
    (an error is never cached).
    """
    try:
        (count,) = _LENGTH.unpack_from(section, 0)
        position = 4
        headers: list[Header] = []
        for _ in range(count):
            (size,) = _SIZE.unpack_from(section, position)
            if size < 0:
                raise IntegrityError(f"stream {name} holds a header without a name")
            header_name = section[position + 4 : position + 4 + size].decode("utf-8")
            position += 4 + size
            (size,) = _SIZE.unpack_from(section, position)
            position += 4
            value = None
            if size >= 0:
                value = section[position : position + size]
                position += size
            elif size != -1:
                raise _damaged(name)
            headers.append((header_name, value))
            if position > len(section):
                raise _damaged(name)
    except (struct.error, UnicodeDecodeError) as exc:
        raise _damaged(name) from exc
    if position < len(section):
        raise IntegrityError(f"stream {name} holds a record frame with trailing bytes")
    if position > len(section):
        raise _damaged(name)
    return tuple(headers)


def _decode(data: bytes, start: int, end: int, name: str) -> RecordTuple:
    """Parse the body at ``data[start:end]``; ``IntegrityError`` naming stream ``name`` if damaged.

    Reads in place with ``unpack_from`` and slices (no cursor object per record). The
    headers are the rest of the body after the value (see :func:`_header_section`); a
    key or value length that runs past the body leaves no room for them, which that
    parse reports; a negative length other than -1 (null) is reported at once.
    """
    try:
        offset, timestamp_type, timestamp, size = _BODY_HEAD.unpack_from(data, start)
        position = start + 21
        key = None
        if size >= 0:
            key = data[position : position + size]
            position += size
        elif size != -1:
            raise _damaged(name)
        (size,) = _SIZE.unpack_from(data, position)
        position += 4
        value = None
        if size >= 0:
            value = data[position : position + size]
            position += size
        elif size != -1:
            raise _damaged(name)
    except struct.error as exc:
        raise _damaged(name) from exc
    if position + 4 > end:
        raise _damaged(name)
    return (
        offset,
        timestamp_type,
        timestamp,
        key,
        value,
        list(_header_section(data[position:end], name)),
    )


def decode(body: bytes, name: str) -> Record:
    """Parse one frame's body; raises ``IntegrityError`` naming stream ``name`` if damaged."""
    return Record(*_decode(body, 0, len(body), name))


def iter_frames(stream: ReadableStream, name: str) -> Iterator[RecordTuple]:
    """Yield the records of one stream in order as tuples; ``IntegrityError`` on damage.

    Frames are parsed in place from blocks of :data:`_BLOCK` bytes; only a frame that
    spans two blocks is copied.
    """
    data = b""
    position = 0
    while True:
        block = stream.read(_BLOCK)
        if block:
            data = data[position:] + block if position < len(data) else block
            position = 0
        length = len(data)
        while length - position >= 4:
            (size,) = _LENGTH.unpack_from(data, position)
            start = position + 4
            if length - start < size:
                break
            position = start + size
            yield _decode(data, start, position, name)
        if not block:
            if position != length:
                raise IntegrityError(f"stream {name} ends in the middle of a record frame")
            return


def read_records(stream: ReadableStream, name: str) -> Iterator[Record]:
    """Yield the records of one stream in order; ``IntegrityError`` on a cut or damaged frame."""
    for fields in iter_frames(stream, name):
        yield Record(*fields)

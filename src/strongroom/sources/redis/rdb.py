"""Checking an RDB file as it streams past: header, auxiliary fields, EOF opcode, CRC64.

An RDB starts with ``REDIS`` and a four-digit version, then auxiliary fields (opcode
``0xFA``, two strings: ``redis-ver``, ``used-mem``, ``repl-offset`` …), and ends with the
EOF opcode ``0xFF`` and, from version 5, the CRC64 (Jones polynomial, as Redis computes
it, little-endian) of everything before it; a server saving with ``rdbchecksum no`` writes
zero there. :class:`RdbCheck` is fed the blocks in order, keeps the CRC running without
holding the file, and :meth:`RdbCheck.finish` raises ``IntegrityError`` for anything that
is not a complete RDB. The values are not parsed: a scratch server loading the file is
the full check (see the restore test).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

import anycrc

from strongroom.errors import IntegrityError

MAGIC: Final = b"REDIS"
_HEADER_SIZE: Final = 9
_HEAD_KEPT: Final = 64 * 1024
_AUX: Final = 0xFA
_EOF: Final = 0xFF
_CRC64: Final = anycrc.Model("CRC64-REDIS")
_CRC_FROM_VERSION: Final = 5


@dataclass
class RdbFacts:
    """What the checked RDB says about itself."""

    version: int
    aux: dict[str, str]
    size: int
    crc64: str | None
    """The checksum as hex, or None when the server wrote none (``rdbchecksum no``)."""


@dataclass
class RdbCheck:
    """Feed the bytes of an RDB with :meth:`feed`, then call :meth:`finish`."""

    name: str = "the RDB"
    _crc: int = 0
    _size: int = 0
    _head: bytearray = field(default_factory=bytearray)
    _held: bytes = b""
    _before_footer: int = -1

    def feed(self, block: bytes) -> None:
        """Take the next bytes of the file."""
        if not block:
            return
        if len(self._head) < _HEAD_KEPT:
            self._head += block[: _HEAD_KEPT - len(self._head)]
        self._size += len(block)
        pending = self._held + block if self._held else block
        # The last 8 bytes may be the checksum, which is not part of what it covers.
        if len(pending) > 8:
            self._crc = _CRC64.calc(pending[:-8], self._crc)
            self._before_footer = pending[-9]
            self._held = bytes(pending[-8:])
        else:
            self._held = bytes(pending)

    def finish(self) -> RdbFacts:
        """Check the whole file; return its facts. Raises ``IntegrityError``."""
        head = bytes(self._head)
        if len(head) < _HEADER_SIZE or not head.startswith(MAGIC):
            raise IntegrityError(f"{self.name} does not start with an RDB header")
        try:
            version = int(head[5:9])
        except ValueError:
            raise IntegrityError(f"{self.name} has no RDB version in its header") from None
        if self._size < _HEADER_SIZE + 9 or self._before_footer != _EOF:
            raise IntegrityError(f"{self.name} does not end with the RDB EOF opcode (truncated)")
        stored = struct.unpack("<Q", self._held)[0]
        crc: str | None = None
        if version >= _CRC_FROM_VERSION and stored != 0:
            # The EOF opcode is covered by the checksum, the checksum itself is not.
            if stored != self._crc:
                raise IntegrityError(
                    f"{self.name} fails its CRC64 check (stored {stored:016x}, "
                    f"computed {self._crc:016x})"
                )
            crc = f"{stored:016x}"
        return RdbFacts(version=version, aux=parse_aux(head), size=self._size, crc64=crc)


def _length(data: bytes, position: int) -> tuple[int, int, bool]:
    """Read an RDB length at ``position``: (value, next position, is a special encoding)."""
    first = data[position]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, position + 1, False
    if kind == 1:
        return ((first & 0x3F) << 8) | data[position + 1], position + 2, False
    if kind == 3:
        return first & 0x3F, position + 1, True
    if first == 0x80:
        return struct.unpack_from(">I", data, position + 1)[0], position + 5, False
    if first == 0x81:
        return struct.unpack_from(">Q", data, position + 1)[0], position + 9, False
    raise ValueError(f"unknown RDB length byte {first:#x}")


def _string(data: bytes, position: int) -> tuple[str, int]:
    """Read an RDB string (plain or integer-encoded) at ``position``."""
    value, position, special = _length(data, position)
    if not special:
        end = position + value
        if end > len(data):
            raise IndexError("string beyond the kept head")
        return data[position:end].decode("utf-8", "replace"), end
    sizes = {0: "<b", 1: "<h", 2: "<i"}
    if value not in sizes:
        raise ValueError("compressed strings are not expected in auxiliary fields")
    number = struct.unpack_from(sizes[value], data, position)[0]
    return str(number), position + struct.calcsize(sizes[value])


def parse_aux(head: bytes) -> dict[str, str]:
    """Return the auxiliary fields at the start of an RDB (as many as ``head`` holds)."""
    fields: dict[str, str] = {}
    position = _HEADER_SIZE
    try:
        while position < len(head) and head[position] == _AUX:
            key, position = _string(head, position + 1)
            value, position = _string(head, position)
            fields[key] = value
    except (IndexError, ValueError, struct.error):
        pass  # an unusual field ends what is shown; the checksum still covers the file
    return fields

"""Index fragments: which chunks each pack holds, so readers find a chunk by its id.

Binary payload of an ``index/<sha256>`` sealed object (docs/vault-format.md §9)::

    u32 pack_count || pack_block...
    pack_block = pack_sha256[32] || salt[32] || u32 generation || u64 pack_size
                 || u32 chunk_count || entry[49]...
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from strongroom.errors import IntegrityError
from strongroom.vault.crypto import open_sealed, seal
from strongroom.vault.format import (
    ENTRY,
    HEADER,
    MAGIC_INDEX,
    MAX_GENERATION,
    MAX_PACK_SIZE,
    PACK_TRAILER,
    TAG_BYTES,
    ChunkEntry,
    parse_entries,
)
from strongroom.vault.pack import MAX_PACK_CHUNKS

FRAGMENT_MAX_CHUNKS: Final = 65_536
"""Writers flush a fragment once it lists this many chunks (about 3.2 MB)."""
MAX_FRAGMENT_PACKS: Final = 1 << 20
_COUNT: Final = struct.Struct(">I")
_PACK_BLOCK: Final = struct.Struct(">32s32sIQI")


@dataclass(frozen=True, slots=True)
class IndexedPack:
    """One pack as an index fragment lists it."""

    digest: bytes
    salt: bytes
    generation: int
    size: int
    entries: tuple[ChunkEntry, ...]

    def to_bytes(self) -> bytes:
        """Serialise to a pack block."""
        head = _PACK_BLOCK.pack(
            self.digest, self.salt, self.generation, self.size, len(self.entries)
        )
        return head + b"".join(entry.to_bytes() for entry in self.entries)


def encode_fragment(blocks: Sequence[bytes]) -> bytes:
    """Return a fragment payload made of already serialised pack blocks."""
    return _COUNT.pack(len(blocks)) + b"".join(blocks)


def parse_fragment(payload: bytes, what: str) -> list[IndexedPack]:
    """Parse a decrypted fragment payload.

    Raises ``IntegrityError`` naming ``what`` for anything but a well-formed fragment.
    """
    if len(payload) < _COUNT.size:
        raise IntegrityError(f"{what} is truncated")
    (pack_count,) = _COUNT.unpack_from(payload)
    if pack_count > MAX_FRAGMENT_PACKS:
        raise IntegrityError(f"{what} lists {pack_count} packs")
    packs: list[IndexedPack] = []
    position = _COUNT.size
    for _ in range(pack_count):
        if position + _PACK_BLOCK.size > len(payload):
            raise IntegrityError(f"{what} is truncated in a pack block")
        digest, salt, generation, size, count = _PACK_BLOCK.unpack_from(payload, position)
        position += _PACK_BLOCK.size
        if not 1 <= generation <= MAX_GENERATION or count > MAX_PACK_CHUNKS:
            raise IntegrityError(f"{what} has an impossible pack block")
        entries = parse_entries(payload, position, count, what)
        position += count * ENTRY.size
        end = entries[-1].offset + entries[-1].stored_length if entries else HEADER.size
        minimum = end + TAG_BYTES + PACK_TRAILER.size
        if size < minimum or size > MAX_PACK_SIZE:
            raise IntegrityError(f"{what} gives pack {digest.hex()} an impossible size")
        packs.append(IndexedPack(digest, salt, generation, size, tuple(entries)))
    if position != len(payload):
        raise IntegrityError(f"{what} has trailing bytes")
    return packs


def seal_fragment(blocks: Sequence[bytes], generation: int, data_key: bytes) -> bytes:
    """Return the sealed ``index/`` object for ``blocks`` under ``data_key``."""
    return seal(MAGIC_INDEX, generation, data_key, encode_fragment(blocks), compress_level=1)


def open_fragment(data: bytes, data_key_of: Callable[[int], bytes], what: str) -> list[IndexedPack]:
    """Open and parse an ``index/`` object; raises ``IntegrityError`` when it is damaged."""
    _, payload = open_sealed(data, MAGIC_INDEX, data_key_of, what)
    return parse_fragment(payload, what)

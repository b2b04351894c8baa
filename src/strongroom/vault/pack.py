"""Packs: many encrypted chunks in one object, with an encrypted header listing them.

Layout (docs/vault-format.md §8)::

    preamble(44) || chunk_ct[0] || ... || header_ct || u32 len(header_ct) || "SRPE"

:class:`PackBuilder` assembles one; :func:`parse_pack` and :func:`read_pack_header` read
one back (the latter with ranged gets only, for index repair); :func:`open_chunk` turns one
stored chunk back into its checked plaintext.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import IntegrityError
from strongroom.storage.base import BlobStore
from strongroom.vault.crypto import (
    HEADER_NONCE,
    GenerationKeys,
    chunk_aad,
    decompress,
    object_key,
    offset_nonce,
)
from strongroom.vault.format import (
    ENTRY,
    FLAG_ZSTD,
    FORMAT_VERSION,
    HEADER,
    MAGIC_PACK,
    MAGIC_PACK_END,
    MAGIC_PACK_HEADER,
    PACK_HEADER_PREFIX,
    PACK_TRAILER,
    SALT_BYTES,
    TAG_BYTES,
    ChunkEntry,
    ObjectHeader,
    pack_name,
    parse_entries,
)

MAX_PACK_CHUNKS: Final = 1 << 20
PACK_KEY_CACHE: Final = 1024


@dataclass(frozen=True, slots=True)
class SealedPack:
    """A finished pack: its object name, bytes and what it holds."""

    name: str
    digest: bytes
    data: bytes
    salt: bytes
    generation: int
    entries: tuple[ChunkEntry, ...]


@dataclass(slots=True)
class _Pending:
    chunk_id: bytes
    payload: bytes
    flags: int
    raw_length: int


@dataclass(slots=True)
class PackBuilder:
    """Collects chunk payloads for one pack; :meth:`seal` encrypts and lays them out."""

    keys: GenerationKeys
    chunks: list[_Pending] = field(default_factory=list)
    payload_bytes: int = 0

    def add(self, chunk_id: bytes, payload: bytes, flags: int, raw_length: int) -> None:
        """Queue one chunk's payload (compressed or not, per ``flags``)."""
        self.chunks.append(_Pending(chunk_id, payload, flags, raw_length))
        self.payload_bytes += len(payload) + TAG_BYTES

    def __len__(self) -> int:
        return len(self.chunks)

    def seal(self) -> SealedPack:
        """Encrypt every chunk and the header; returns the pack. Empties the builder."""
        salt = secrets.token_bytes(SALT_BYTES)
        preamble = ObjectHeader(MAGIC_PACK, 0, self.keys.generation, salt).to_bytes()
        aead = object_key(self.keys.data_key, salt, MAGIC_PACK)
        pieces = [preamble]
        entries: list[ChunkEntry] = []
        offset = len(preamble)
        pending, self.chunks, self.payload_bytes = self.chunks, [], 0
        pending.reverse()
        while pending:
            chunk = pending.pop()
            ciphertext = aead.encrypt(
                offset_nonce(offset),
                chunk.payload,
                chunk_aad(chunk.chunk_id, chunk.flags, chunk.raw_length),
            )
            entries.append(
                ChunkEntry(chunk.chunk_id, offset, len(ciphertext), chunk.raw_length, chunk.flags)
            )
            pieces.append(ciphertext)
            offset += len(ciphertext)
        header = PACK_HEADER_PREFIX.pack(
            MAGIC_PACK_HEADER, FORMAT_VERSION, bytes(3), len(entries)
        ) + b"".join(entry.to_bytes() for entry in entries)
        header_ct = aead.encrypt(HEADER_NONCE, header, preamble)
        pieces.append(header_ct)
        pieces.append(PACK_TRAILER.pack(len(header_ct), MAGIC_PACK_END))
        data = b"".join(pieces)
        del pieces
        digest = hashlib.sha256(data).digest()
        return SealedPack(
            pack_name(digest.hex()), digest, data, salt, self.keys.generation, tuple(entries)
        )


@dataclass(frozen=True, slots=True)
class PackHeader:
    """What a pack's preamble and header say."""

    generation: int
    salt: bytes
    entries: tuple[ChunkEntry, ...]
    header_offset: int


def parse_trailer(tail: bytes, pack_size: int, what: str) -> int:
    """Return where the header ciphertext starts, from the pack's last 8 bytes.

    Raises ``IntegrityError`` naming ``what`` for a foreign or impossible trailer.
    """
    if pack_size < HEADER.size + TAG_BYTES + PACK_TRAILER.size or len(tail) != PACK_TRAILER.size:
        raise IntegrityError(f"{what} is truncated: {pack_size} bytes")
    header_length: int
    magic: bytes
    header_length, magic = PACK_TRAILER.unpack(tail)
    if magic != MAGIC_PACK_END:
        raise IntegrityError(f"{what} does not end with SRPE (truncated?)")
    start = pack_size - PACK_TRAILER.size - header_length
    if header_length < TAG_BYTES + PACK_HEADER_PREFIX.size or start < HEADER.size:
        raise IntegrityError(f"{what} has an impossible header length {header_length}")
    return start


def parse_header_plaintext(plaintext: bytes, header_offset: int, what: str) -> list[ChunkEntry]:
    """Parse a decrypted pack header; its chunks must end exactly at ``header_offset``.

    Raises ``IntegrityError`` naming ``what`` for anything else.
    """
    if len(plaintext) < PACK_HEADER_PREFIX.size:
        raise IntegrityError(f"{what} has a truncated header")
    magic, version, reserved, count = PACK_HEADER_PREFIX.unpack_from(plaintext)
    if magic != MAGIC_PACK_HEADER or version != FORMAT_VERSION or reserved != bytes(3):
        raise IntegrityError(f"{what} has a foreign header")
    if count > MAX_PACK_CHUNKS or len(plaintext) != PACK_HEADER_PREFIX.size + count * ENTRY.size:
        raise IntegrityError(f"{what} has a header of the wrong length")
    entries = parse_entries(plaintext, PACK_HEADER_PREFIX.size, count, what)
    end = entries[-1].offset + entries[-1].stored_length if entries else HEADER.size
    if end != header_offset:
        raise IntegrityError(
            f"{what}: its chunks end at {end}, its header starts at {header_offset}"
        )
    return entries


def decrypt_header(
    preamble: bytes,
    header_ct: bytes,
    header_offset: int,
    data_key_of: Callable[[int], bytes],
    what: str,
) -> PackHeader:
    """Decrypt and parse a pack header from its preamble and header ciphertext.

    Raises ``IntegrityError`` naming ``what`` when either is damaged.
    """
    head = ObjectHeader.parse(preamble, MAGIC_PACK, what)
    if head.flags:
        raise IntegrityError(f"{what} has pack flags set")
    aead = object_key(data_key_of(head.generation), head.salt, MAGIC_PACK)
    try:
        plaintext = aead.decrypt(HEADER_NONCE, header_ct, preamble[: HEADER.size])
    except InvalidTag as exc:
        raise IntegrityError(f"{what} has a header that fails authentication") from exc
    entries = parse_header_plaintext(plaintext, header_offset, what)
    return PackHeader(head.generation, head.salt, tuple(entries), header_offset)


def parse_pack(data: bytes, data_key_of: Callable[[int], bytes], what: str) -> PackHeader:
    """Parse a whole pack's preamble, trailer and header (chunks are not decrypted).

    Raises ``IntegrityError`` naming ``what`` when the pack is damaged.
    """
    start = parse_trailer(data[-PACK_TRAILER.size :], len(data), what)
    header_ct = data[start : len(data) - PACK_TRAILER.size]
    return decrypt_header(data[: HEADER.size], header_ct, start, data_key_of, what)


def read_pack_header(
    store: BlobStore, name: str, data_key_of: Callable[[int], bytes]
) -> PackHeader:
    """Read a pack's header with ranged gets only (preamble, trailer, header): what an
    index repair needs. Raises ``IntegrityError`` when the pack is damaged and store
    errors (``BlobNotFoundError`` …) as they come."""
    size = store.stat(name).size
    if size < HEADER.size + PACK_TRAILER.size:
        raise IntegrityError(f"{name} is truncated: {size} bytes")
    preamble = store.get(name, 0, HEADER.size)
    start = parse_trailer(store.get(name, size - PACK_TRAILER.size, PACK_TRAILER.size), size, name)
    header_ct = store.get(name, start, size - PACK_TRAILER.size - start)
    return decrypt_header(preamble, header_ct, start, data_key_of, name)


class PackKeys:
    """A bounded cache of pack AEADs, keyed by (generation, salt)."""

    def __init__(self, data_key_of: Callable[[int], bytes]) -> None:
        self._data_key_of = data_key_of
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, bytes], AESGCM] = OrderedDict()

    def aead(self, generation: int, salt: bytes) -> AESGCM:
        """Return the AEAD of the pack with this generation and salt."""
        key = (generation, salt)
        with self._lock:
            aead = self._cache.get(key)
            if aead is not None:
                self._cache.move_to_end(key)
                return aead
        aead = object_key(self._data_key_of(generation), salt, MAGIC_PACK)
        with self._lock:
            self._cache[key] = aead
            while len(self._cache) > PACK_KEY_CACHE:
                self._cache.popitem(last=False)
        return aead


def open_chunk(
    aead: AESGCM, entry: ChunkEntry, ciphertext: bytes | memoryview, keys: GenerationKeys, what: str
) -> bytes:
    """Decrypt, decompress and check one chunk; returns its plaintext.

    Raises ``IntegrityError`` naming ``what`` when the ciphertext is altered or does not
    hold the chunk ``entry`` names.
    """
    if len(ciphertext) != entry.stored_length:
        raise IntegrityError(f"{what}: chunk {entry.chunk_id.hex()} is truncated")
    try:
        payload = aead.decrypt(
            offset_nonce(entry.offset),
            bytes(ciphertext),
            chunk_aad(entry.chunk_id, entry.flags, entry.raw_length),
        )
    except InvalidTag as exc:
        raise IntegrityError(f"{what}: chunk {entry.chunk_id.hex()} fails authentication") from exc
    if entry.flags & FLAG_ZSTD:
        plaintext = decompress(payload, entry.raw_length, entry.raw_length, what)
    else:
        plaintext = payload
    if len(plaintext) != entry.raw_length or keys.chunk_id(plaintext) != entry.chunk_id:
        raise IntegrityError(f"{what}: chunk {entry.chunk_id.hex()} does not match its id")
    return plaintext

"""Packs: many encrypted chunks in one object, with an encrypted header listing them.

Layout (docs/vault-format.md §8)::

    preamble(44) || chunk_ct[0] || ... || header_ct || u32 len(header_ct) || "SRPE"

:class:`PackBuilder` assembles one; :func:`parse_pack` and :func:`read_pack_header` read
one back (the latter with ranged gets only, for index repair); :func:`open_chunk` turns one
stored chunk back into its checked plaintext.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import IntegrityError
from strongroom.storage.base import BlobStore
from strongroom.vault.crypto import (
    HEADER_NONCE,
    GenerationKeys,
    chunk_aad,
    decompress_into,
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


class PackBuilder:
    """Lays out one pack as chunks come: each payload is encrypted into the pack's buffer
    at once (its offset is its nonce), so the builder holds the pack once and no payload.

    :meth:`seal` adds the header and hands the bytes out without a copy. ``buffer`` may
    be the :attr:`buffer` of an earlier builder whose sealed pack is no longer used:
    reusing it saves allocating (and faulting in) a pack-sized buffer per pack.
    """

    def __init__(
        self, keys: GenerationKeys, buffer: io.BytesIO | None = None, capacity: int = 0
    ) -> None:
        """``capacity``: the bytes the pack will likely need (one allocation up front)."""
        self.keys = keys
        self.buffer = buffer if buffer is not None else io.BytesIO()
        self._size = self.buffer.seek(0, io.SEEK_END)
        if capacity > self._size:
            self._reserve(capacity)
        self._salt = secrets.token_bytes(SALT_BYTES)
        self._preamble = ObjectHeader(MAGIC_PACK, 0, keys.generation, self._salt).to_bytes()
        self._aead = object_key(keys.data_key, self._salt, MAGIC_PACK)
        self._entries: list[ChunkEntry] = []
        self._offset = len(self._preamble)
        self._write(0, self._preamble)

    @property
    def payload_bytes(self) -> int:
        """Stored bytes of the chunks added so far (payloads and tags)."""
        return self._offset - len(self._preamble)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, chunk_id: bytes, payload: bytes | memoryview, flags: int, raw_length: int) -> int:
        """Encrypt one chunk's payload (compressed or not, per ``flags``) into the pack;
        returns its stored length. ``payload`` is not kept."""
        offset = self._offset
        stored = len(payload) + TAG_BYTES
        nonce = offset_nonce(offset)
        aad = chunk_aad(chunk_id, flags, raw_length)
        encrypt_into = getattr(self._aead, "encrypt_into", None)
        if encrypt_into is None:  # pragma: no cover - cryptography < 45
            self._write(offset, self._aead.encrypt(nonce, payload, aad))
        else:
            self._reserve(offset + stored)
            with self.buffer.getbuffer() as view, view[offset : offset + stored] as target:
                encrypt_into(nonce, payload, aad, target)
        self._entries.append(ChunkEntry(chunk_id, offset, stored, raw_length, flags))
        self._offset = offset + stored
        return stored

    def seal(self) -> SealedPack:
        """Encrypt the header and finish the pack; returns it. The builder is spent."""
        entries = self._entries
        header = PACK_HEADER_PREFIX.pack(
            MAGIC_PACK_HEADER, FORMAT_VERSION, bytes(3), len(entries)
        ) + b"".join(entry.to_bytes() for entry in entries)
        header_ct = self._aead.encrypt(HEADER_NONCE, header, self._preamble)
        self._write(self._offset, header_ct)
        end = self._write(
            self._offset + len(header_ct), PACK_TRAILER.pack(len(header_ct), MAGIC_PACK_END)
        )
        self.buffer.truncate(end)
        data = self.buffer.getvalue()  # shares the buffer: no copy
        digest = hashlib.sha256(data).digest()
        return SealedPack(
            pack_name(digest.hex()), digest, data, self._salt, self.keys.generation, tuple(entries)
        )

    def _reserve(self, end: int) -> None:
        """Grow the buffer to hold ``end`` bytes (geometrically: few resizes a pack)."""
        if self._size < end:
            self._size = max(end, self._size + self._size // 2, 1 << 16)
            self.buffer.seek(self._size - 1)
            self.buffer.write(b"\0")

    def _write(self, offset: int, data: bytes) -> int:
        self._reserve(offset + len(data))
        self.buffer.seek(offset)
        return self.buffer.write(data) + offset


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
    target = bytearray(entry.raw_length)
    open_chunk_into(aead, entry, ciphertext, memoryview(target), keys, what)
    return bytes(target)


def open_chunk_into(
    aead: AESGCM,
    entry: ChunkEntry,
    ciphertext: bytes | memoryview,
    target: memoryview,
    keys: GenerationKeys,
    what: str,
) -> None:
    """Decrypt, decompress and check one chunk into ``target`` (``entry.raw_length``
    bytes, which it fills).

    Nothing is allocated per chunk: a compressed payload is decrypted into this thread's
    scratch buffer and decompressed into ``target``, a stored one decrypted into it. When
    this raises, ``target`` holds garbage that must not be used. Raises
    ``IntegrityError`` naming ``what`` when the ciphertext is altered or does not hold
    the chunk ``entry`` names.
    """
    chunk = entry.chunk_id.hex()
    if len(ciphertext) != entry.stored_length:
        raise IntegrityError(f"{what}: chunk {chunk} is truncated")
    if len(target) != entry.raw_length:
        raise ValueError("the target must have the chunk's plaintext length")
    nonce = offset_nonce(entry.offset)
    aad = chunk_aad(entry.chunk_id, entry.flags, entry.raw_length)
    size = entry.stored_length - TAG_BYTES
    try:
        if entry.flags & FLAG_ZSTD:
            with memoryview(_scratch(size))[:size] as frame:
                _decrypt_into(aead, nonce, ciphertext, aad, frame)
                decompress_into(frame, target, what)
        elif size != entry.raw_length:  # authentic or not, it is not this chunk
            aead.decrypt(nonce, ciphertext, aad)
            raise IntegrityError(f"{what}: chunk {chunk} does not match its id")
        else:
            _decrypt_into(aead, nonce, ciphertext, aad, target)
    except InvalidTag as exc:
        raise IntegrityError(f"{what}: chunk {chunk} fails authentication") from exc
    if keys.chunk_id(target) != entry.chunk_id:
        raise IntegrityError(f"{what}: chunk {chunk} does not match its id")


def _decrypt_into(
    aead: AESGCM, nonce: bytes, ciphertext: bytes | memoryview, aad: bytes, target: memoryview
) -> None:
    """Decrypt into ``target`` (cryptography >= 45 writes in place; older copies once)."""
    decrypt_into = getattr(aead, "decrypt_into", None)
    if decrypt_into is None:  # pragma: no cover - cryptography < 45
        target[:] = aead.decrypt(nonce, ciphertext, aad)
        return
    decrypt_into(nonce, ciphertext, aad, target)


_scratch_local = threading.local()


def _scratch(size: int) -> bytearray:
    """Return this thread's scratch buffer, at least ``size`` bytes long."""
    buffer: bytearray | None = getattr(_scratch_local, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _scratch_local.buffer = bytearray(size)
    return buffer

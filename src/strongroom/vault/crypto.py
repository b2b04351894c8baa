"""The cryptography of the vault: subkeys, sealed objects, chunk ids, zstd with bounds.

Every function here turns foreign bytes into typed results or an ``IntegrityError``;
AEAD failures, zstd errors and impossible sizes never escape as third-party exceptions.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import blake3
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.errors import IntegrityError
from strongroom.vault.format import (
    FLAG_ZSTD,
    HEADER,
    KEY_BYTES,
    SALT_BYTES,
    TAG_BYTES,
    ObjectHeader,
)

ZERO_NONCE: Final = bytes(12)
HEADER_NONCE: Final = b"\xff" * 12
MAX_SEALED_PAYLOAD: Final = 1 << 30
STREAM_HASH_CONTEXT: Final = "strongroom v1 stream hash"
STREAM_HINT_CONTEXT: Final = "strongroom v1 stream hint"
STREAM_REFERENCE_CONTEXT: Final = "strongroom v1 stream reference"
_INFO_PREFIX: Final = b"strongroom v1 "

_local = threading.local()


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """Return HKDF-SHA256(ikm, salt, info) with a 32-byte output."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(ikm)


def object_key(root_key: bytes, salt: bytes, magic: bytes) -> AESGCM:
    """Return the AEAD of one pack or sealed object: HKDF(root, salt, "strongroom v1 "+magic)."""
    return AESGCM(hkdf(root_key, salt, _INFO_PREFIX + magic))


def offset_nonce(offset: int) -> bytes:
    """Return the nonce of the chunk at ``offset`` in a pack: ``offset`` as 12 bytes."""
    return offset.to_bytes(12, "big")


def chunk_aad(chunk_id: bytes, flags: int, raw_length: int) -> bytes:
    """Return the associated data of a chunk: id || flags || raw length."""
    return chunk_id + bytes([flags]) + raw_length.to_bytes(4, "big")


def compress(data: bytes | memoryview, level: int) -> bytes:
    """Return the zstd frame of ``data`` (content size recorded) at ``level``."""
    compressors: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if compressors is None:
        compressors = _local.compressors = {}
    compressor = compressors.get(level)
    if compressor is None:
        compressor = compressors[level] = zstandard.ZstdCompressor(
            level=level, write_content_size=True
        )
    return compressor.compress(data)


def decompress(
    frame: bytes | memoryview, expected_size: int | None, limit: int, what: str
) -> bytes:
    """Return the content of one zstd ``frame``.

    The frame must declare its content size, which must equal ``expected_size`` when
    given and never exceed ``limit``. Raises ``IntegrityError`` naming ``what`` otherwise
    or when the frame is corrupt.
    """
    try:
        size = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} is not a zstd frame: {exc}") from exc
    if size < 0 or size > limit or (expected_size is not None and size != expected_size):
        raise IntegrityError(f"{what} declares an impossible size")
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    try:
        content = decompressor.decompress(frame, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} does not decompress: {exc}") from exc
    if len(content) != size:
        raise IntegrityError(f"{what} decompresses to {len(content)} bytes, not {size}")
    return content


def decompress_into(frame: bytes | memoryview, target: memoryview, what: str) -> None:
    """Decompress one zstd ``frame`` into ``target``, which it must fill exactly.

    The frame must declare its content size, equal to ``len(target)``. Writing into a
    buffer the caller reuses spares a new object (and fresh pages) per chunk. Raises
    ``IntegrityError`` naming ``what`` otherwise or when the frame is corrupt.
    """
    size = len(target)
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} is not a zstd frame: {exc}") from exc
    if declared != size:
        raise IntegrityError(f"{what} declares an impossible size")
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    filled = 0
    try:
        with decompressor.stream_reader(frame) as reader:
            while filled < size:
                count = reader.readinto(target[filled:])
                if count <= 0:
                    break
                filled += count
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} does not decompress: {exc}") from exc
    if filled != size:
        raise IntegrityError(f"{what} decompresses to {filled} bytes, not {size}")


def seal(
    magic: bytes,
    generation: int,
    root_key: bytes,
    payload: bytes,
    *,
    context: bytes = b"",
    compress_level: int | None = 3,
) -> bytes:
    """Return a sealed object (docs/vault-format.md §11) holding ``payload``.

    ``compress_level`` None stores the payload as is; otherwise it is zstd-compressed.
    """
    flags = 0
    if compress_level is not None:
        payload = compress(payload, compress_level)
        flags = FLAG_ZSTD
    header = ObjectHeader(magic, flags, generation, secrets.token_bytes(SALT_BYTES)).to_bytes()
    aead = object_key(root_key, header[-SALT_BYTES:], magic)
    return header + aead.encrypt(ZERO_NONCE, payload, header + context)


def open_sealed(
    data: bytes,
    magic: bytes,
    root_key_of: Callable[[int], bytes],
    what: str,
    *,
    context: bytes = b"",
) -> tuple[ObjectHeader, bytes]:
    """Open a sealed object; returns its header and payload (decompressed).

    ``root_key_of(generation)`` returns the root key or raises. Raises ``IntegrityError``
    naming ``what`` when the bytes are not an intact object of this kind.
    """
    header = ObjectHeader.parse(data, magic, what)
    if len(data) < HEADER.size + TAG_BYTES:
        raise IntegrityError(f"{what} is truncated")
    aead = object_key(root_key_of(header.generation), header.salt, magic)
    try:
        payload = aead.decrypt(ZERO_NONCE, data[HEADER.size :], data[: HEADER.size] + context)
    except InvalidTag as exc:
        raise IntegrityError(
            f"{what} fails authentication (altered, truncated or foreign)"
        ) from exc
    if header.flags & FLAG_ZSTD:
        payload = decompress(payload, None, MAX_SEALED_PAYLOAD, what)
    return header, payload


@dataclass(frozen=True, slots=True)
class GenerationKeys:
    """The keys of one data-key generation (docs/vault-format.md §6)."""

    generation: int
    data_key: bytes = field(repr=False)
    id_key: bytes = field(repr=False)
    stream_key: bytes = field(init=False, repr=False)
    hint_key: bytes = field(init=False, repr=False)
    reference_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name, context in (
            ("stream_key", STREAM_HASH_CONTEXT),
            ("hint_key", STREAM_HINT_CONTEXT),
            ("reference_key", STREAM_REFERENCE_CONTEXT),
        ):
            derived = blake3.blake3(self.id_key, derive_key_context=context).digest()
            object.__setattr__(self, name, derived)

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        """Return the keyed BLAKE3 id of a chunk's plaintext."""
        return bytes(blake3.blake3(data, key=self.id_key).digest())

    def stream_hasher(self) -> blake3.blake3:
        """Return a keyed BLAKE3 hasher for a whole stream."""
        return blake3.blake3(key=self.stream_key)

    def stream_hint(self, name: str) -> bytes:
        """Return the keyed hash under which the local cache keeps hints for stream
        ``name`` (so the cache holds no stream names)."""
        return bytes(blake3.blake3(name.encode("utf-8"), key=self.hint_key).digest())

    def reference_mac(self, message: bytes) -> bytes:
        """Return the keyed BLAKE3 MAC of a stream reference's canonical JSON."""
        return bytes(blake3.blake3(message, key=self.reference_key).digest())

"""Constants, binary layouts and object names of the vault format (docs/vault-format.md).

Everything a reader of stored bytes must agree on lives here: magics, the 44-byte object
header shared by packs and sealed objects, the 49-byte chunk entry, and how object names
are formed and parsed.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Final

from pydantic import ValidationError

from strongroom.errors import IntegrityError, UnsupportedError

FORMAT_VERSION: Final = 1
CIPHER_AES_256_GCM: Final = 1

MAGIC_PACK: Final = b"SRPK"
MAGIC_PACK_HEADER: Final = b"SRPH"
MAGIC_PACK_END: Final = b"SRPE"
MAGIC_INDEX: Final = b"SRIX"
MAGIC_MANIFEST: Final = b"SRMF"
MAGIC_DATAKEYS: Final = b"SRDK"
MAGIC_LEASE: Final = b"SRLK"
MAGIC_KEYSTATE: Final = b"SRKS"
SEALED_MAGICS: Final = frozenset(
    {MAGIC_INDEX, MAGIC_MANIFEST, MAGIC_DATAKEYS, MAGIC_LEASE, MAGIC_KEYSTATE}
)

FLAG_ZSTD: Final = 0x01
"""Chunk and sealed-object flag: the payload is a zstd frame."""

SALT_BYTES: Final = 32
KEY_BYTES: Final = 32
TAG_BYTES: Final = 16
CHUNK_ID_BYTES: Final = 32

HEADER: Final = struct.Struct(">4sBBBBI32s")
"""magic, version, cipher, flags, reserved, generation, salt: 44 bytes."""

ENTRY: Final = struct.Struct(">32sQIIB")
"""chunk id, offset, stored length, raw length, flags: 49 bytes."""

PACK_HEADER_PREFIX: Final = struct.Struct(">4sB3sI")
"""SRPH, version, 3 zero bytes, chunk count: 12 bytes."""

PACK_TRAILER: Final = struct.Struct(">I4s")
"""header ciphertext length, SRPE: 8 bytes."""

MAX_GENERATION: Final = 99_999_999
MAX_RAW_CHUNK: Final = 64 * 1024 * 1024
MAX_PACK_SIZE: Final = 4 * 1024 * 1024 * 1024 - 1

CONFIG_NAME: Final = "config"
KEYS_PREFIX: Final = "keys/"
DATAKEYS_PREFIX: Final = "datakeys/"
KEYSTATE_PREFIX: Final = "keystate/"
DATA_PREFIX: Final = "data/"
INDEX_PREFIX: Final = "index/"
MANIFESTS_PREFIX: Final = "manifests/"
LEASES_PREFIX: Final = "locks/"
"""Lease objects (named ``locks/`` since format 1; they are leases, not retention locks)."""

_SHA_HEX = re.compile(r"[0-9a-f]{64}")
_PACK_NAME = re.compile(r"data/([0-9a-f]{2})/([0-9a-f]{64})")
_GENERATION_NAME = re.compile(r"datakeys/([0-9]{8})-([0-9a-f]{32})")
_KEYSTATE_NAME = re.compile(r"keystate/([0-9]{8})-([0-9a-f]{32})")
_KEY_NAME = re.compile(r"keys/([0-9a-f]{16})")


@dataclass(frozen=True, slots=True)
class ObjectHeader:
    """The 44-byte header that starts every pack and sealed object."""

    magic: bytes
    flags: int
    generation: int
    salt: bytes

    def to_bytes(self) -> bytes:
        """Serialise (version 1, AES-256-GCM)."""
        return HEADER.pack(
            self.magic,
            FORMAT_VERSION,
            CIPHER_AES_256_GCM,
            self.flags,
            0,
            self.generation,
            self.salt,
        )

    @classmethod
    def parse(cls, data: bytes, magic: bytes, what: str) -> ObjectHeader:
        """Parse the first 44 bytes of ``data`` as a header with ``magic``.

        Raises ``IntegrityError`` (naming ``what``) for a short or foreign header and
        ``UnsupportedError`` for a newer version or unknown cipher.
        """
        if len(data) < HEADER.size:
            raise IntegrityError(f"{what} is truncated: {len(data)} bytes, no header")
        found, version, cipher, flags, reserved, generation, salt = HEADER.unpack_from(data)
        if found != magic:
            raise IntegrityError(f"{what} does not start with {magic.decode()}")
        if version != FORMAT_VERSION:
            if version > FORMAT_VERSION:
                raise UnsupportedError(f"{what} has format version {version}")
            raise IntegrityError(f"{what} has format version {version}")
        if cipher != CIPHER_AES_256_GCM:
            raise UnsupportedError(f"{what} uses unknown cipher {cipher}")
        if flags & ~FLAG_ZSTD or reserved:
            raise IntegrityError(f"{what} has unknown header flags")
        if not 1 <= generation <= MAX_GENERATION:
            raise IntegrityError(f"{what} names key generation {generation}")
        return cls(found, flags, generation, salt)


@dataclass(frozen=True, slots=True)
class ChunkEntry:
    """Where one chunk sits in a pack (an entry of a pack header or index fragment)."""

    chunk_id: bytes
    offset: int
    stored_length: int
    raw_length: int
    flags: int

    def to_bytes(self) -> bytes:
        """Serialise to the 49-byte entry."""
        return ENTRY.pack(
            self.chunk_id, self.offset, self.stored_length, self.raw_length, self.flags
        )


def parse_entries(data: bytes | memoryview, start: int, count: int, what: str) -> list[ChunkEntry]:
    """Parse ``count`` contiguous entries from ``data[start:]`` and check their layout.

    Entries must start at offset 44, follow one another without gaps, carry at least a tag
    and only known flags. Raises ``IntegrityError`` naming ``what`` otherwise.
    """
    end = start + count * ENTRY.size
    if count < 0 or end > len(data):
        raise IntegrityError(f"{what} is truncated: {count} chunk entries do not fit")
    entries: list[ChunkEntry] = []
    expected_offset = HEADER.size
    for position in range(start, end, ENTRY.size):
        chunk_id, offset, stored, raw, flags = ENTRY.unpack_from(data, position)
        if offset != expected_offset:
            raise IntegrityError(f"{what} has a chunk at offset {offset}, not {expected_offset}")
        if stored < TAG_BYTES or raw > MAX_RAW_CHUNK or flags & ~FLAG_ZSTD:
            raise IntegrityError(f"{what} has an impossible chunk entry at offset {offset}")
        compressed = bool(flags & FLAG_ZSTD)
        if (stored - TAG_BYTES >= raw) if compressed else (stored != raw + TAG_BYTES):
            raise IntegrityError(f"{what} has a chunk entry of inconsistent lengths")
        expected_offset = offset + stored
        if expected_offset > MAX_PACK_SIZE:
            raise IntegrityError(f"{what} has chunks beyond the largest pack size")
        entries.append(ChunkEntry(chunk_id, offset, stored, raw, flags))
    return entries


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def pack_name(digest_hex: str) -> str:
    """Return ``data/<xx>/<sha256>`` for a pack's hex SHA-256."""
    return f"{DATA_PREFIX}{digest_hex[:2]}/{digest_hex}"


def pack_digest(name: str) -> str | None:
    """Return the hex SHA-256 a pack name carries, or None if ``name`` is not a pack name."""
    match = _PACK_NAME.fullmatch(name)
    if match is None or match.group(2)[:2] != match.group(1):
        return None
    return match.group(2)


def index_name(digest_hex: str) -> str:
    """Return ``index/<sha256>``."""
    return f"{INDEX_PREFIX}{digest_hex}"


def manifest_name(digest_hex: str) -> str:
    """Return ``manifests/<sha256>``: the object of recovery point ``digest_hex``."""
    return f"{MANIFESTS_PREFIX}{digest_hex}"


def sha_suffix(name: str, prefix: str) -> str | None:
    """Return the hex SHA-256 after ``prefix`` in ``name``, or None if it is not one."""
    if not name.startswith(prefix):
        return None
    suffix = name[len(prefix) :]
    return suffix if _SHA_HEX.fullmatch(suffix) else None


def is_sha256_hex(value: str) -> bool:
    """Tell whether ``value`` is 64 lowercase hex characters."""
    return _SHA_HEX.fullmatch(value) is not None


def datakeys_name(generation: int, vault_id: str) -> str:
    """Return ``datakeys/<8 digits>-<vault id>``."""
    return f"{DATAKEYS_PREFIX}{generation:08d}-{vault_id}"


def keystate_name(sequence: int, vault_id: str) -> str:
    """Return ``keystate/<8 digits>-<vault id>``."""
    return f"{KEYSTATE_PREFIX}{sequence:08d}-{vault_id}"


def keystate_sequence(name: str, vault_id: str) -> int | None:
    """Return the sequence number a ``keystate/`` name of vault ``vault_id`` carries, or
    None (another vault's, or not a key-state name)."""
    match = _KEYSTATE_NAME.fullmatch(name)
    if match is None or match.group(2) != vault_id:
        return None
    return int(match.group(1))


def datakeys_generation(name: str, vault_id: str) -> int | None:
    """Return the generation a ``datakeys/`` name of vault ``vault_id`` carries, or None
    (also for leftovers of another vault's interrupted creation)."""
    match = _GENERATION_NAME.fullmatch(name)
    if match is None or match.group(2) != vault_id:
        return None
    return int(match.group(1))


def key_name(key_id: str) -> str:
    """Return ``keys/<key-id>``."""
    return f"{KEYS_PREFIX}{key_id}"


def key_id_of(name: str) -> str | None:
    """Return the key id a ``keys/`` name carries, or None."""
    match = _KEY_NAME.fullmatch(name)
    return match.group(1) if match else None


def validation_message(exc: ValidationError) -> str:
    """Return the first problem of a pydantic validation error as ``path: message``."""
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    return f"{location}: {error['msg']}" if location else str(error["msg"])

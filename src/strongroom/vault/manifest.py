"""Recovery-point manifests: named streams, their chunk lists, metadata, tags and sizes.

A manifest is a sealed ``manifests/<sha256>`` object (docs/vault-format.md §10); the
recovery point's id is that SHA-256. Long chunk lists live in *list chunks* so a manifest
stays small whatever the data size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, NewType

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from strongroom.errors import ConfigError, IntegrityError, UnsupportedError
from strongroom.keys import parse_aware_time
from strongroom.vault.crypto import open_sealed, seal
from strongroom.vault.format import (
    MAGIC_MANIFEST,
    MAX_GENERATION,
    is_sha256_hex,
    validation_message,
)

RecoveryPointId = NewType("RecoveryPointId", str)
"""The hex SHA-256 of a recovery point's manifest object."""

INLINE_CHUNKS: Final = 64
"""Streams of at most this many chunks list them in the manifest itself."""
LIST_CHUNK_IDS: Final = 4096
"""Chunk ids per list chunk (128 KiB of plaintext)."""
MAX_STREAM_NAME_BYTES: Final = 4096
MANIFEST_FORMAT: Final = "strongroom-manifest"
MANIFEST_VERSION: Final = 1


def _check_hex_ids(values: list[str] | None) -> list[str] | None:
    if values is not None and not all(is_sha256_hex(value) for value in values):
        raise ValueError("chunk ids must be 64 lowercase hex characters")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StreamRecord(_Strict):
    """One named stream of a recovery point."""

    name: str = Field(min_length=1, description="Unique within the point.")
    size: int = Field(ge=0, description="Bytes in the stream.")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="Keyed BLAKE3 of the stream.")
    chunk_count: int = Field(ge=0, description="Chunks in the stream.")
    chunks: list[str] | None = Field(description="Chunk ids, for short streams.")
    chunk_lists: list[str] | None = Field(description="List-chunk ids, for long streams.")

    _hex_chunks = field_validator("chunks", "chunk_lists")(_check_hex_ids)

    @field_validator("name")
    @classmethod
    def _short_name(cls, value: str) -> str:
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("stream names are UTF-8 text") from exc
        if len(encoded) > MAX_STREAM_NAME_BYTES or "\x00" in value:
            raise ValueError("stream names are at most 4096 UTF-8 bytes, without NUL")
        return value

    @model_validator(mode="after")
    def _one_list(self) -> StreamRecord:
        if (self.chunks is None) == (self.chunk_lists is None):
            raise ValueError("exactly one of chunks and chunk_lists is set")
        if self.chunks is not None and len(self.chunks) != self.chunk_count:
            raise ValueError("chunks does not hold chunk_count ids")
        if self.chunk_lists is not None and (
            self.chunk_count <= INLINE_CHUNKS
            or len(self.chunk_lists) != -(-self.chunk_count // LIST_CHUNK_IDS)
        ):
            raise ValueError("chunk_lists does not fit chunk_count")
        if self.chunk_count and not self.size:
            raise ValueError("an empty stream has no chunks")
        return self


class PointStats(_Strict):
    """Sizes and counts of a recovery point."""

    logical_size: int = Field(ge=0, description="Sum of stream sizes.")
    stored_size: int = Field(ge=0, description="Stored bytes of the distinct chunks referenced.")
    new_stored_size: int = Field(ge=0, description="Bytes of packs this backup uploaded.")
    chunk_count: int = Field(ge=0, description="Distinct chunks referenced.")
    new_chunk_count: int = Field(ge=0, description="Chunks this backup stored.")


class Manifest(_Strict):
    """The JSON document inside a manifest object."""

    format: Literal["strongroom-manifest"] = MANIFEST_FORMAT
    version: int = Field(default=MANIFEST_VERSION, ge=1, le=MANIFEST_VERSION)
    created: str
    key_generation: int = Field(ge=1, le=MAX_GENERATION)
    tags: dict[str, str]
    metadata: dict[str, Any]
    streams: list[StreamRecord]
    stats: PointStats

    @field_validator("created")
    @classmethod
    def _aware(cls, value: str) -> str:
        parse_aware_time(value)
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Manifest:
        names = [stream.name for stream in self.streams]
        if len(set(names)) != len(names):
            raise ValueError("stream names repeat")
        return self


@dataclass(frozen=True, slots=True)
class RecoveryPoint:
    """A committed recovery point: its id and manifest."""

    id: RecoveryPointId
    manifest: Manifest

    @property
    def created(self) -> datetime:
        """When the point was committed (aware, UTC)."""
        return parse_aware_time(self.manifest.created)

    @property
    def tags(self) -> dict[str, str]:
        """The point's tags."""
        return dict(self.manifest.tags)

    @property
    def metadata(self) -> dict[str, Any]:
        """The source's metadata."""
        return dict(self.manifest.metadata)

    @property
    def streams(self) -> list[StreamRecord]:
        """The streams, in commit order."""
        return list(self.manifest.streams)

    @property
    def stats(self) -> PointStats:
        """Sizes and counts."""
        return self.manifest.stats

    @property
    def key_generation(self) -> int:
        """The data-key generation the point was written with."""
        return self.manifest.key_generation


def build_manifest(
    *,
    created: datetime,
    key_generation: int,
    tags: dict[str, str],
    metadata: dict[str, Any],
    streams: list[StreamRecord],
    stats: PointStats,
) -> Manifest:
    """Return a validated manifest; raises ``ConfigError`` for tags or metadata that are
    not JSON (string tags, a JSON object of metadata)."""
    try:
        metadata = json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"recovery point metadata is not JSON: {exc}") from exc
    try:
        return Manifest(
            created=created.isoformat(),
            key_generation=key_generation,
            tags=tags,
            metadata=metadata,
            streams=streams,
            stats=stats,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid recovery point: {validation_message(exc)}") from exc


def encode_manifest(manifest: Manifest, data_key: bytes) -> bytes:
    """Return the sealed manifest object."""
    payload = manifest.model_dump_json().encode("utf-8")
    return seal(MAGIC_MANIFEST, manifest.key_generation, data_key, payload, compress_level=3)


def parse_manifest_json(payload: bytes, what: str) -> Manifest:
    """Parse a decrypted manifest payload.

    Raises ``IntegrityError`` naming ``what`` for anything but a version-1 manifest and
    ``UnsupportedError`` for a newer version.
    """
    try:
        raw = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IntegrityError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise IntegrityError(f"{what} is not a JSON object")
    version = raw.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > MANIFEST_VERSION:
        raise UnsupportedError(f"{what} has manifest version {version}")
    try:
        return Manifest.model_validate(raw)
    except (ValidationError, RecursionError) as exc:
        detail = (
            validation_message(exc) if isinstance(exc, ValidationError) else "too deeply nested"
        )
        raise IntegrityError(f"{what} is malformed: {detail}") from exc


def decode_manifest(data: bytes, data_key_of: Callable[[int], bytes], what: str) -> Manifest:
    """Open a manifest object and parse it; its header generation must be the manifest's.

    ``data_key_of(generation)`` returns the data key. Raises ``IntegrityError``.
    """
    header, payload = open_sealed(data, MAGIC_MANIFEST, data_key_of, what)
    manifest = parse_manifest_json(payload, what)
    if manifest.key_generation != header.generation:
        raise IntegrityError(f"{what} names key generation {manifest.key_generation}")
    return manifest


def parse_chunk_list(plaintext: bytes, what: str) -> list[bytes]:
    """Split a list chunk into its 32-byte ids; raises ``IntegrityError`` when malformed."""
    if not plaintext or len(plaintext) % 32 or len(plaintext) > LIST_CHUNK_IDS * 32:
        raise IntegrityError(f"{what}: a list chunk of {len(plaintext)} bytes")
    return [plaintext[start : start + 32] for start in range(0, len(plaintext), 32)]

"""The vault's ``config`` object: parameters fixed at creation, authenticated by a MAC.

:class:`VaultSettings` is what a caller chooses when creating a vault; :class:`VaultConfig`
is the stored document (docs/vault-format.md §4).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from strongroom.errors import ConfigError, IntegrityError, UnsupportedError
from strongroom.keys import canonical_json, parse_aware_time
from strongroom.vault.crypto import hkdf
from strongroom.vault.format import validation_message

KIB: Final = 1024
MIB: Final = 1024 * KIB
MAX_CONFIG_BYTES: Final = 64 * KIB
CONFIG_MAC_INFO: Final = b"strongroom v1 config mac"
_VAULT_ID = re.compile(r"[0-9a-f]{32}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ChunkerParams(_Strict):
    """FastCDC bounds in bytes."""

    algorithm: Literal["fastcdc-2016"] = "fastcdc-2016"
    min_size: int = Field(default=512 * KIB, ge=64, le=64 * MIB)
    avg_size: int = Field(default=1 * MIB, ge=256, le=64 * MIB)
    max_size: int = Field(default=4 * MIB, ge=1024, le=64 * MIB)

    @model_validator(mode="after")
    def _ordered(self) -> ChunkerParams:
        if not self.min_size <= self.avg_size <= self.max_size:
            raise ValueError("chunk sizes must satisfy min_size <= avg_size <= max_size")
        return self


class CompressionParams(_Strict):
    """How writers compress chunks by default."""

    algorithm: Literal["zstd", "none"] = "zstd"
    level: int = Field(default=3, ge=1, le=22)


class VaultSettings(BaseModel):
    """What a caller chooses when creating a vault.

    Defaults: chunks of 512 KiB / 1 MiB / 4 MiB (min / average / max), zstd level 3,
    packs of 16 MiB. Tests use much smaller values.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_min_size: int = Field(default=512 * KIB, description="Smallest chunk, bytes.")
    chunk_avg_size: int = Field(default=1 * MIB, description="Average chunk, bytes.")
    chunk_max_size: int = Field(default=4 * MIB, description="Largest chunk, bytes.")
    compression: Literal["zstd", "none"] = Field(default="zstd", description="Chunk compression.")
    compression_level: int = Field(default=3, ge=1, le=22, description="zstd level.")
    pack_target_size: int = Field(
        default=16 * MIB, ge=1024, le=1024 * MIB, description="Close a pack at this many bytes."
    )

    def chunker(self) -> ChunkerParams:
        """Return the chunker parameters; raises ``ConfigError`` when out of bounds."""
        try:
            return ChunkerParams(
                min_size=self.chunk_min_size,
                avg_size=self.chunk_avg_size,
                max_size=self.chunk_max_size,
            )
        except ValidationError as exc:
            raise ConfigError(f"invalid chunk sizes: {validation_message(exc)}") from exc


class VaultConfig(_Strict):
    """The stored ``config`` document."""

    format: Literal["strongroom-vault"] = "strongroom-vault"
    version: int = Field(default=1, ge=1, le=1)
    vault_id: str = Field(pattern=_VAULT_ID.pattern)
    created: str
    cipher: Literal["aes-256-gcm"] = "aes-256-gcm"
    chunk_id: Literal["blake3-keyed"] = "blake3-keyed"
    chunker: ChunkerParams
    compression: CompressionParams
    pack_target_size: int = Field(ge=1024, le=1024 * MIB)
    mac: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")

    @field_validator("created")
    @classmethod
    def _aware(cls, value: str) -> str:
        parse_aware_time(value)
        return value

    @property
    def created_at(self) -> datetime:
        """When the vault was created (aware)."""
        return parse_aware_time(self.created)

    @classmethod
    def new(cls, settings: VaultSettings, master_key: bytes) -> VaultConfig:
        """Return a config for a new vault with a random id, MAC'd with ``master_key``."""
        unsigned = cls(
            vault_id=secrets.token_hex(16),
            created=datetime.now(UTC).isoformat(),
            chunker=settings.chunker(),
            compression=CompressionParams(
                algorithm=settings.compression, level=settings.compression_level
            ),
            pack_target_size=settings.pack_target_size,
        )
        return unsigned.model_copy(update={"mac": _mac(unsigned._fields(), master_key)})

    def _fields(self) -> dict[str, Any]:
        fields = self.model_dump(mode="json")
        del fields["mac"]
        return fields

    def to_bytes(self) -> bytes:
        """Serialise for storage (canonical JSON)."""
        return canonical_json(self.model_dump(mode="json"))

    def check_mac(self, master_key: bytes) -> None:
        """Raise ``IntegrityError`` unless the MAC matches under ``master_key``."""
        if not hmac.compare_digest(self.mac, _mac(self._fields(), master_key)):
            raise IntegrityError(
                "the vault config fails its MAC: it was altered or belongs to another key"
            )


def parse_config(data: bytes) -> VaultConfig:
    """Parse the bytes of a ``config`` object.

    Raises ``IntegrityError`` for anything but a well-formed version-1 config and
    ``UnsupportedError`` for a newer version.
    """
    if len(data) > MAX_CONFIG_BYTES:
        raise IntegrityError("vault config is larger than any config")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IntegrityError(f"vault config is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise IntegrityError("vault config is not a JSON object")
    version = raw.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > 1:
        raise UnsupportedError(f"vault format version {version} is newer than this strongroom")
    try:
        config = VaultConfig.model_validate(raw)
    except ValidationError as exc:
        raise IntegrityError(f"vault config is malformed: {validation_message(exc)}") from exc
    if not config.mac:
        raise IntegrityError("vault config has no MAC")
    # Byte-exact: JSON would also take added whitespace, and a config that is not the bytes
    # strongroom wrote was changed by something else, even where the MAC still holds.
    if config.to_bytes() != data:
        raise IntegrityError("vault config is not in the exact form strongroom writes")
    return config


def _mac(fields: dict[str, Any], master_key: bytes) -> str:
    key = hkdf(master_key, b"", CONFIG_MAC_INFO)
    return hmac.new(key, canonical_json(fields), sha256).hexdigest()

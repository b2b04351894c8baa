"""Key wrappings: the vault master key encrypted for one key provider (``keys/<key-id>``).

A wrapping is a small JSON document (see docs/vault-format.md §5). The master key is
encrypted with AES-256-GCM under a key-encryption key derived from the provider's
material; every other field of the document is the associated data, so none can be
altered without the unwrap failing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from strongroom.errors import ConfigError, IntegrityError, UnsupportedError, WrongKeyError
from strongroom.keys.kdf import KdfParams, KdfSettings, derive_kek, prefetch_kek
from strongroom.keys.material import KeyKind, KeyMaterial

MASTER_KEY_BYTES: Final = 32
MAX_WRAPPING_BYTES: Final = 64 * 1024
FORMAT_NAME: Final = "strongroom-key"
FORMAT_VERSION: Final = 1
_ZERO_NONCE: Final = bytes(12)
_HEX_ID = re.compile(r"[0-9a-f]{16}")
_VAULT_ID = re.compile(r"[0-9a-f]{32}")


def canonical_json(value: Any) -> bytes:
    """Return the canonical JSON bytes of ``value`` (sorted keys, no spaces, ASCII)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def parse_aware_time(value: str) -> datetime:
    """Parse an ISO 8601 time with a UTC offset; raises ``ValueError`` for a naive one."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("time has no UTC offset")
    return parsed


def new_key_id() -> str:
    """Return a new random key id: 16 lowercase hex characters."""
    return secrets.token_hex(8)


class KeyDocument(BaseModel):
    """The JSON document stored as ``keys/<key-id>``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal["strongroom-key"]
    version: int = Field(ge=1)
    vault_id: str = Field(pattern=_VAULT_ID.pattern)
    key_id: str = Field(pattern=_HEX_ID.pattern)
    created: str
    label: str = Field(max_length=200)
    material: Literal["passphrase", "key"]
    kdf: KdfParams
    wrapped_key: str = Field(max_length=128)

    @field_validator("created")
    @classmethod
    def _aware(cls, value: str) -> str:
        parse_aware_time(value)
        return value


@dataclass(frozen=True, slots=True)
class KeyWrapping:
    """One parsed wrapping: its document and the bytes that authenticate it."""

    document: KeyDocument
    associated_data: bytes

    @property
    def key_id(self) -> str:
        """The wrapping's id (the ``<key-id>`` of its object name)."""
        return self.document.key_id

    @property
    def kind(self) -> KeyKind:
        """The kind of key material this wrapping opens with."""
        return self.document.material

    @property
    def created(self) -> datetime:
        """When the wrapping was made (aware)."""
        return parse_aware_time(self.document.created)

    def to_bytes(self) -> bytes:
        """Serialise for storage (canonical JSON)."""
        return canonical_json(self.document.model_dump(mode="json"))

    def prefetch(self, material: KeyMaterial) -> None:
        """Start deriving this wrapping's key-encryption key from ``material`` in the
        background (see ``prefetch_kek``); a later :meth:`unwrap` takes it. Nothing
        happens if ``material`` is of another kind."""
        if material.kind == self.kind:
            prefetch_kek(self.document.kdf, material)

    def unwrap(self, material: KeyMaterial) -> bytes:
        """Return the master key this wrapping holds.

        Raises ``WrongKeyError`` if ``material`` is of another kind or does not open it
        (a wrong passphrase and an altered wrapping look the same), ``IntegrityError`` if
        what it holds is not a master key.
        """
        if material.kind != self.kind:
            raise WrongKeyError(
                f"key {self.key_id} opens with a {self.kind}, not a {material.kind}"
            )
        kek = derive_kek(self.document.kdf, material)
        try:
            master_key = AESGCM(kek).decrypt(
                _ZERO_NONCE, base64.b64decode(self.document.wrapped_key), self.associated_data
            )
        except InvalidTag as exc:
            raise WrongKeyError(f"{material.source} does not open key {self.key_id}") from exc
        if len(master_key) != MASTER_KEY_BYTES:
            raise IntegrityError(f"key {self.key_id} does not hold a 32-byte master key")
        return master_key


def wrap_master_key(
    master_key: bytes,
    material: KeyMaterial,
    *,
    vault_id: str,
    label: str = "",
    kdf: KdfSettings | None = None,
    key_id: str | None = None,
) -> KeyWrapping:
    """Wrap ``master_key`` for ``material``; returns the wrapping to store as ``keys/<id>``.

    Raises ``ConfigError`` for bad KDF settings or a label over 200 characters.
    """
    params = (kdf or KdfSettings()).new_params(material.kind)
    fields: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "vault_id": vault_id,
        "key_id": key_id or new_key_id(),
        "created": datetime.now(UTC).isoformat(),
        "label": label,
        "material": material.kind,
        "kdf": params.model_dump(mode="json"),
    }
    associated_data = canonical_json(fields)
    kek = derive_kek(params, material)
    wrapped = AESGCM(kek).encrypt(_ZERO_NONCE, master_key, associated_data)
    fields["wrapped_key"] = base64.b64encode(wrapped).decode("ascii")
    try:
        document = KeyDocument.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(f"invalid key wrapping: {exc.errors()[0]['msg']}") from exc
    return KeyWrapping(document, associated_data)


def parse_wrapping(data: bytes) -> KeyWrapping:
    """Parse the bytes of a ``keys/<key-id>`` object.

    Raises ``IntegrityError`` for anything that is not a well-formed version-1 key
    document, ``UnsupportedError`` for a newer version.
    """
    if len(data) > MAX_WRAPPING_BYTES:
        raise IntegrityError("key object is larger than any key wrapping")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IntegrityError(f"key object is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise IntegrityError("key object is not a JSON object")
    version = raw.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise UnsupportedError(f"key object version {version} is newer than this strongroom")
    try:
        document = KeyDocument.model_validate(raw)
        wrapped = base64.b64decode(document.wrapped_key.encode("ascii"), validate=True)
    except (ValidationError, binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise IntegrityError(f"key object is malformed: {_first_error(exc)}") from exc
    if len(wrapped) != MASTER_KEY_BYTES + 16:
        raise IntegrityError("key object's wrapped key has the wrong length")
    fields = {key: value for key, value in raw.items() if key != "wrapped_key"}
    return KeyWrapping(document, canonical_json(fields))


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"])
        return f"{location}: {error['msg']}"
    return str(exc)

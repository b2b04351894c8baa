"""Key material: what a key provider hands over to unwrap a vault's master key.

Two kinds exist. A *passphrase* is text chosen by a person; it is stretched with a
memory-hard KDF before use. A *key* is at least 32 random bytes written as base64 text
(in a key file or an environment variable); it needs no stretching.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from strongroom.errors import ConfigError, ConflictError, SecretError

KeyKind = Literal["passphrase", "key"]
MIN_KEY_BYTES: Final = 32
MAX_KEY_BYTES: Final = 1024


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """Secret bytes of one kind; ``source`` says where they came from, never what they are."""

    kind: KeyKind
    secret: bytes = field(repr=False)
    source: str


def passphrase_material(passphrase: str, source: str = "passphrase") -> KeyMaterial:
    """Return the material of a passphrase: its Unicode NFC form in UTF-8.

    Raises ``ConfigError`` for an empty passphrase.
    """
    if not passphrase:
        raise ConfigError(f"the passphrase from {source} is empty")
    normalised = unicodedata.normalize("NFC", passphrase)
    return KeyMaterial("passphrase", normalised.encode("utf-8"), source)


def key_material_from_text(text: str, source: str) -> KeyMaterial:
    """Decode base64 key text (surrounding whitespace ignored) into key material.

    Raises ``SecretError`` naming ``source`` when the text is not base64 of at least 32
    bytes; the message never repeats the text.
    """
    try:
        secret = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise SecretError(
            f"the key in {source} is not base64 text",
            hint="Create key material with 'strongroom vault key generate' or "
            "`head -c 32 /dev/urandom | base64`.",
        ) from exc
    if not MIN_KEY_BYTES <= len(secret) <= MAX_KEY_BYTES:
        raise SecretError(
            f"the key in {source} holds {len(secret)} bytes; between {MIN_KEY_BYTES} "
            f"and {MAX_KEY_BYTES} are needed"
        )
    return KeyMaterial("key", secret, source)


def generate_key_text() -> str:
    """Return new key material: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(MIN_KEY_BYTES)).decode("ascii")


def write_key_file(path: Path) -> None:
    """Create ``path`` holding new key material, readable by its owner only.

    Raises ``ConflictError`` if the file exists (a key is never overwritten) and
    ``ConfigError`` if it cannot be written.
    """
    text = generate_key_text() + "\n"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConflictError(f"key file {path} already exists") from exc
    except OSError as exc:
        raise ConfigError(f"cannot create key file {path}: {exc.strerror}") from exc
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())

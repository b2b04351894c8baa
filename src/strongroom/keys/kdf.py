"""Key-encryption-key derivation: Argon2id or scrypt for passphrases, HKDF for keys.

The parameters of each derivation are stored in the key object (``kdf``); their bounds are
checked when parsing, before any work, so a tampered object cannot make a reader spend
unbounded time or memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from typing import Annotated, Final, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from strongroom.errors import ConfigError, UnsupportedError
from strongroom.keys import derive
from strongroom.keys.derive import (
    KEK_BYTES,
    MAX_ARGON2_LANES,
    MAX_ARGON2_MEMORY_KIB,
    MAX_ARGON2_PASSES,
    MAX_ARGON2_WORK_KIB,
    Derivation,
    argon2id_derivation,
    start,
    take,
)
from strongroom.keys.material import KeyKind, KeyMaterial

SALT_BYTES: Final = 16
MAX_SCRYPT_MEMORY: Final = 1 << 30
WRAPPING_INFO: Final = b"strongroom v1 key wrapping"


def _check_salt(value: str) -> str:
    try:
        salt = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError("salt is not base64") from exc
    if not 16 <= len(salt) <= 64:
        raise ValueError("salt must be 16..64 bytes")
    return value


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    salt: str = Field(description="base64 of 16..64 random bytes.")

    _salt_is_base64 = field_validator("salt")(_check_salt)

    @property
    def salt_bytes(self) -> bytes:
        """The decoded salt."""
        return base64.b64decode(self.salt)


class Argon2idParams(_Params):
    """Argon2id (RFC 9106) over a passphrase: version 0x13, no secret, no associated data."""

    algorithm: Literal["argon2id"]
    memory_kib: int = Field(ge=8, le=MAX_ARGON2_MEMORY_KIB, description="Memory in KiB.")
    iterations: int = Field(ge=1, le=MAX_ARGON2_PASSES, description="Passes over memory (t).")
    lanes: int = Field(ge=1, le=MAX_ARGON2_LANES, description="Parallelism (p).")

    @model_validator(mode="after")
    def _enough_memory(self) -> Argon2idParams:
        if self.memory_kib < 8 * self.lanes:
            raise ValueError("argon2id needs memory_kib >= 8 * lanes")
        if self.memory_kib * self.iterations > MAX_ARGON2_WORK_KIB:
            raise ValueError("argon2id parameters need more than 4 GiB-passes of work")
        return self


class ScryptParams(_Params):
    """scrypt (RFC 7914) over a passphrase."""

    algorithm: Literal["scrypt"]
    n: int = Field(ge=2, le=1 << 20, description="CPU/memory cost, a power of two.")
    r: int = Field(ge=1, le=32, description="Block size.")
    p: int = Field(ge=1, le=16, description="Parallelism.")

    @model_validator(mode="after")
    def _bounded(self) -> ScryptParams:
        if self.n & (self.n - 1):
            raise ValueError("scrypt n must be a power of two")
        if 128 * self.n * self.r > MAX_SCRYPT_MEMORY:
            raise ValueError("scrypt parameters need more than 1 GiB")
        return self


class HkdfParams(_Params):
    """HKDF-SHA256 over high-entropy key material."""

    algorithm: Literal["hkdf-sha256"]


KdfParams = Annotated[Argon2idParams | ScryptParams | HkdfParams, Field(discriminator="algorithm")]


class KdfSettings(BaseModel):
    """How new passphrase wrappings are stretched (key material always uses HKDF).

    Defaults: Argon2id with 64 MiB, 3 passes, 4 lanes: RFC 9106 §4's second recommended
    option, its floor for memory-constrained settings, and above every OWASP Password
    Storage Cheat Sheet minimum (e.g. 19 MiB, 2 passes). About 0.2 s of CPU per unwrap;
    see docs/vault-format.md §5 for the measurements and the reasoning.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["argon2id", "scrypt"] = Field(default="argon2id")
    memory_kib: int = Field(default=64 * 1024, ge=8, le=4 * 1024 * 1024)
    iterations: int = Field(default=3, ge=1, le=64)
    lanes: int = Field(default=4, ge=1, le=64)
    scrypt_n: int = Field(default=1 << 17, ge=2, le=1 << 20)
    scrypt_r: int = Field(default=8, ge=1, le=32)
    scrypt_p: int = Field(default=1, ge=1, le=16)

    def new_params(self, kind: KeyKind) -> Argon2idParams | ScryptParams | HkdfParams:
        """Return parameters with a fresh salt for wrapping material of ``kind``.

        Raises ``ConfigError`` if the settings are out of the bounds a reader accepts.
        """
        salt = base64.b64encode(secrets.token_bytes(SALT_BYTES)).decode("ascii")
        try:
            if kind == "key":
                return HkdfParams(algorithm="hkdf-sha256", salt=salt)
            if self.algorithm == "argon2id":
                return Argon2idParams(
                    algorithm="argon2id",
                    salt=salt,
                    memory_kib=self.memory_kib,
                    iterations=self.iterations,
                    lanes=self.lanes,
                )
            return ScryptParams(
                algorithm="scrypt", salt=salt, n=self.scrypt_n, r=self.scrypt_r, p=self.scrypt_p
            )
        except ValueError as exc:
            raise ConfigError(f"invalid key derivation settings: {exc}") from exc


def derive_kek(params: Argon2idParams | ScryptParams | HkdfParams, material: KeyMaterial) -> bytes:
    """Derive the 32-byte key-encryption key of ``material`` under ``params``: the result
    of a :func:`prefetch_kek` of the same derivation if one was started, else now.

    Raises ``ConfigError`` if the material kind does not fit the algorithm and
    ``UnsupportedError`` if this ``cryptography`` has no Argon2id (it needs >= 44).
    """
    future = take(_derivation(params, material))
    if future is not None:
        return future.result()
    return _derive(params, material)


def prefetch_kek(params: Argon2idParams | ScryptParams | HkdfParams, material: KeyMaterial) -> None:
    """Start deriving the key-encryption key of ``material`` under ``params`` on a thread of
    its own; the next :func:`derive_kek` of the same derivation takes the result (or its
    error). Argon2id and scrypt release the GIL, so a caller opening a vault can import
    and prepare the rest meanwhile. At most a few derivations wait to be taken; more
    prefetches are ignored.
    """
    start(_derivation(params, material), lambda: _derive(params, material), "kdf-prefetch")


def _derivation(
    params: Argon2idParams | ScryptParams | HkdfParams, material: KeyMaterial
) -> Derivation:
    if isinstance(params, Argon2idParams) and material.kind == "passphrase":
        # the same identity keys/derive.py gives a derivation started from a hint
        return argon2id_derivation(
            params.salt, params.memory_kib, params.iterations, params.lanes, material.secret
        )
    return params.model_dump_json(), material.kind, material.secret


def _derive(params: Argon2idParams | ScryptParams | HkdfParams, material: KeyMaterial) -> bytes:
    if isinstance(params, HkdfParams):
        if material.kind != "key":
            raise ConfigError("hkdf-sha256 wraps key material, not a passphrase")
        return HKDF(
            algorithm=hashes.SHA256(), length=KEK_BYTES, salt=params.salt_bytes, info=WRAPPING_INFO
        ).derive(material.secret)
    if material.kind != "passphrase":
        raise ConfigError(f"{params.algorithm} wraps a passphrase, not key material")
    if isinstance(params, ScryptParams):
        return hashlib.scrypt(
            material.secret,
            salt=params.salt_bytes,
            n=params.n,
            r=params.r,
            p=params.p,
            maxmem=MAX_SCRYPT_MEMORY + (64 << 20),
            dklen=KEK_BYTES,
        )
    try:
        return derive.argon2id(
            material.secret, params.salt_bytes, params.memory_kib, params.iterations, params.lanes
        )
    except ImportError as exc:  # pragma: no cover - depends on the installed cryptography
        raise UnsupportedError("Argon2id needs cryptography >= 44") from exc

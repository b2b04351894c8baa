"""Signing reports with Ed25519 and checking a signature.

The signing key is a PKCS#8 PEM file (default ``HOME/keys/report-signing.key``, mode
0600) with its public key beside it (``.pub``, SubjectPublicKeyInfo PEM) to hand to
whoever checks reports. A signed file ``F`` gets ``F.sig`` beside it: JSON with the
algorithm, the public key, the SHA-256 of the file and the Ed25519 signature of those
exact bytes, so one changed byte of ``F`` fails the check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from strongroom.errors import ConfigError, ConflictError, IntegrityError, NotFoundError

ALGORITHM: Final = "ed25519"
SIGNATURE_SUFFIX: Final = ".sig"


def default_key_path(home: Path) -> Path:
    """Where the signing key lives unless told otherwise."""
    return home / "keys" / "report-signing.key"


def public_key_path(key_path: Path) -> Path:
    """The public key file beside a signing key."""
    return key_path.with_suffix(".pub")


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex, first 16 characters (for people to compare)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def create_key(key_path: Path) -> Ed25519PublicKey:
    """Create a new signing key at ``key_path`` (and its ``.pub``); raises ConflictError
    when one exists (it is never overwritten)."""
    if key_path.exists():
        raise ConflictError(
            f"a signing key exists at {key_path}", hint="Reports keep being signed with it."
        )
    key = Ed25519PrivateKey.generate()
    key_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public = key.public_key()
    public_key_path(key_path).write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


def load_private_key(key_path: Path) -> Ed25519PrivateKey:
    """Read a signing key; raises NotFoundError when it is missing (with the command that
    creates one), ConfigError when the file holds no Ed25519 private key."""
    try:
        data = key_path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            f"no report signing key at {key_path}",
            hint="Create one with 'strongroom report signing-key create', name another with "
            "--signing-key, or pass --unsigned to write an unsigned report.",
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{key_path} holds no readable private key: {error}") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{key_path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a public key (PEM) or the public half of a signing key; raises NotFoundError,
    ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no public key at {path}") from None
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise ConfigError(f"{path} holds no readable public key: {error}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


def sign_file(path: Path, key: Ed25519PrivateKey, *, at: datetime) -> Path:
    """Sign the bytes of ``path``; write and return ``path.sig``."""
    data = path.read_bytes()
    public = key.public_key()
    document = {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(
            public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ).decode(),
        "key_fingerprint": fingerprint(public),
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "signature": base64.b64encode(key.sign(data)).decode(),
        "signed_at": at.isoformat(),
    }
    signature_path = path.with_name(path.name + SIGNATURE_SUFFIX)
    signature_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return signature_path


@dataclass(frozen=True)
class Verified:
    """A good signature: by which key, over which bytes, when."""

    path: Path
    key_fingerprint: str
    sha256: str
    signed_at: str


def verify_file(path: Path, trusted: Ed25519PublicKey) -> Verified:
    """Check ``path`` against ``path.sig`` and the ``trusted`` public key.

    Raises NotFoundError for a missing file or signature, IntegrityError when the bytes
    or the signature do not match, or when the signature was made by another key.
    """
    signature_path = path.with_name(path.name + SIGNATURE_SUFFIX)
    try:
        data = path.read_bytes()
        document = json.loads(signature_path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise NotFoundError(f"{error.filename} does not exist") from None
    except json.JSONDecodeError as error:
        raise IntegrityError(f"{signature_path} is not a signature file: {error}") from error
    if document.get("algorithm") != ALGORITHM:
        raise IntegrityError(f"{signature_path}: unknown algorithm {document.get('algorithm')!r}")
    signer = fingerprint(trusted)
    if document.get("key_fingerprint") != signer:
        raise IntegrityError(
            f"{path} was signed by key {document.get('key_fingerprint')}, not by the trusted "
            f"key {signer}",
            hint="Check with the public key of whoever signed it: --public-key FILE.",
        )
    try:
        trusted.verify(base64.b64decode(document["signature"]), data)
    except (InvalidSignature, KeyError, ValueError) as error:
        raise IntegrityError(
            f"{path} does not match its signature: it was changed after it was signed",
            hint="Generate the report again from the catalog.",
        ) from error
    return Verified(path, signer, hashlib.sha256(data).hexdigest(), str(document.get("signed_at")))


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    """The bytes a signed document's signature covers: its JSON with sorted keys, no spaces."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_document(fields: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return ``fields`` with a ``signature`` member over their canonical bytes (an anchor)."""
    public = key.public_key()
    return {
        **fields,
        "signature": {
            "algorithm": ALGORITHM,
            "key_fingerprint": fingerprint(public),
            "value": base64.b64encode(key.sign(canonical_bytes(fields))).decode(),
        },
    }


def verify_document(document: Mapping[str, Any], trusted: Ed25519PublicKey) -> dict[str, Any]:
    """Return the signed fields of ``document`` (without ``signature``) once its signature
    checks out with the ``trusted`` key; raises ``IntegrityError`` otherwise (another key,
    a changed field, no signature)."""
    signature = document.get("signature")
    fields = {name: value for name, value in document.items() if name != "signature"}
    if not isinstance(signature, Mapping) or signature.get("algorithm") != ALGORITHM:
        raise IntegrityError("the document carries no Ed25519 signature")
    signer = fingerprint(trusted)
    if signature.get("key_fingerprint") != signer:
        raise IntegrityError(
            f"signed by key {signature.get('key_fingerprint')}, not by the trusted key {signer}"
        )
    try:
        trusted.verify(base64.b64decode(str(signature.get("value"))), canonical_bytes(fields))
    except (InvalidSignature, ValueError) as error:
        raise IntegrityError("the document was changed after it was signed") from error
    return fields

"""The blob store interface every storage backend implements, with its contract.

A blob store maps *names* to immutable byte strings. Names are relative, ``/``-separated
paths made of ``[A-Za-z0-9._-]`` segments (no empty, ``.`` or ``..`` segment, no leading
``/``); :func:`check_name` enforces that before any backend sees a name.

Errors: every method raises only :mod:`strongroom.errors` types. ``BlobNotFoundError`` is
permanent for that name; ``TransientError`` subclasses (network, throttling, unavailable)
may succeed when retried; ``InsufficientStorageError`` and ``AccessDeniedError`` are
permanent until an operator acts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from strongroom.errors import ConfigError, NotFoundError

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


class BlobNotFoundError(NotFoundError):
    """The named blob does not exist (permanent for that name)."""

    code = "BlobNotFound"


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What a listing or a stat tells about one blob."""

    name: str
    size: int


@dataclass(frozen=True, slots=True)
class StoreCapabilities:
    """What a store guarantees, so callers can adapt instead of guessing.

    ``atomic_put``: a reader sees either no blob or the whole blob, never a prefix.
    ``read_after_write``: a blob is readable and listed as soon as ``put`` returns.
    ``ranged_get``: ``get`` with offset/length reads only that range from the medium.
    ``persistent``: data survives the process (false for the memory store).
    ``exclusive_create``: ``put(..., exclusive=True)`` is atomic compare-and-create.
    """

    atomic_put: bool = True
    read_after_write: bool = True
    ranged_get: bool = True
    persistent: bool = True
    exclusive_create: bool = True


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid blob name, else raise ``ConfigError`` naming it."""
    segments = name.split("/")
    if not name or any(
        segment in {"", ".", ".."} or not _SEGMENT.match(segment) for segment in segments
    ):
        raise ConfigError(f"invalid blob name {name!r}")
    return name


def check_prefix(prefix: str) -> str:
    """Return a listing prefix if valid: empty, or a name optionally ending in ``/``."""
    if prefix:
        check_name(prefix.rstrip("/"))
    return prefix


@runtime_checkable
class BlobStore(Protocol):
    """A flat namespace of immutable blobs.

    Implementations must pass ``tests/unit/storage/conformance.py``.
    """

    @property
    def capabilities(self) -> StoreCapabilities:
        """What this store guarantees."""
        ...

    @property
    def url(self) -> str:
        """Where the store lives (``file:///...``, ``memory://...``, ``s3://...``), no secrets."""
        ...

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """Store ``data`` under ``name`` atomically.

        Idempotent: writing the same bytes again is a no-op success. Overwrites an existing
        blob unless ``exclusive``; with ``exclusive`` an existing blob raises
        ``ConflictError`` (not retryable) and leaves the existing blob untouched.
        Raises ``InsufficientStorageError`` when the medium is full; nothing partial
        stays visible under ``name``.
        """
        ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Return the blob's bytes, or ``length`` bytes from ``offset`` (fewer at the end).

        Raises ``BlobNotFoundError`` if absent, ``ConfigError`` for a negative range.
        """
        ...

    def stat(self, name: str) -> BlobInfo:
        """Return the blob's size; raises ``BlobNotFoundError`` if absent."""
        ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Yield every blob whose name starts with ``prefix``, in no promised order."""
        ...

    def delete(self, name: str) -> None:
        """Remove the blob. Idempotent: deleting a missing blob succeeds."""
        ...

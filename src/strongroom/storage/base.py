"""The blob store interface every storage backend implements, with its contract.

A blob store maps *names* to immutable byte strings. Names are relative, ``/``-separated
paths made of ``[A-Za-z0-9._-]`` segments (no empty, ``.`` or ``..`` segment, no leading
``/``), at most 255 characters a segment and 1024 in all, so that the same name is valid
as a file path and as an S3 key; :func:`check_name` enforces that before any backend sees
a name.

Errors: every method raises only :mod:`strongroom.errors` types. ``BlobNotFoundError`` is
permanent for that name; ``TransientError`` subclasses (network, throttling, unavailable)
may succeed when retried; ``InsufficientStorageError`` and ``AccessDeniedError`` are
permanent until an operator acts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from strongroom.errors import BlobNotFoundError as BlobNotFoundError  # the contract's error
from strongroom.errors import ConfigError

_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,255}")
MAX_NAME_LENGTH: Final = 1024
"""S3's key limit; a filesystem's NAME_MAX (255) bounds each segment."""

OPERATIONS: Final = ("put", "get", "stat", "list", "delete")
"""The operations of the contract, by the names wrappers count and report them under."""


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
    ``overlapping_names``: a name can be a blob and the folder of other blobs at once
    (``a`` and ``a/b``), as in S3. Where false (filesystems), the ``put`` that would make
    them overlap raises ``ConflictError`` (not retryable) and changes nothing.
    """

    atomic_put: bool = True
    read_after_write: bool = True
    ranged_get: bool = True
    persistent: bool = True
    exclusive_create: bool = True
    overlapping_names: bool = True


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid blob name, else raise ``ConfigError`` naming it."""
    segments = name.split("/")
    if (
        not name
        or len(name) > MAX_NAME_LENGTH
        or any(segment in {".", ".."} or not _SEGMENT.fullmatch(segment) for segment in segments)
    ):
        raise ConfigError(
            f"invalid blob name {name!r}",
            hint="Blob names are '/'-separated segments of A-Z a-z 0-9 . _ - characters.",
        )
    return name


def is_name(name: str) -> bool:
    """Tell whether ``name`` is a valid blob name (a listing skips what is not)."""
    try:
        check_name(name)
    except ConfigError:
        return False
    return True


def check_prefix(prefix: str) -> str:
    """Return a listing prefix if valid: empty, or a name optionally ending in one ``/``."""
    if prefix:
        check_name(prefix.removesuffix("/"))
    return prefix


def check_range(offset: int, length: int | None) -> None:
    """Raise ``ConfigError`` for a negative ``offset`` or ``length`` of a ranged get."""
    if offset < 0 or (length is not None and length < 0):
        raise ConfigError(f"invalid blob range: offset={offset}, length={length}")


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

        Idempotent: writing the same bytes again is a no-op success, with or without
        ``exclusive`` (so a retried put whose first attempt landed does not fail).
        Overwrites an existing blob unless ``exclusive``; with ``exclusive`` an existing
        blob with other bytes raises ``ConflictError`` (not retryable) and stays untouched.
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
        """Yield every blob whose name starts with ``prefix``, in no promised order.

        ``prefix`` is a plain string prefix (``"data"`` matches ``datax/1``; ``"data/"``
        does not). An invalid prefix raises ``ConfigError`` at the call, not on iteration.
        """
        ...

    def delete(self, name: str) -> None:
        """Remove the blob. Idempotent: deleting a missing blob succeeds."""
        ...

"""A blob store in process memory, for unit tests of the layers above storage.

By default it refuses overlapping names (``a`` and ``a/b``) like a filesystem does, so code
tested against it also runs on the local store; ``overlapping_names=True`` behaves like S3.
Named stores (:meth:`MemoryStore.named`, ``memory://name``) live as long as the process.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

from strongroom.errors import BlobNotFoundError, ConflictError
from strongroom.storage.base import (
    BlobInfo,
    StoreCapabilities,
    check_name,
    check_prefix,
    check_range,
)


def _folders(name: str) -> Iterator[str]:
    """Yield the folders a name lives in: ``a/b/c`` -> ``a``, ``a/b``."""
    segments = name.split("/")
    for end in range(1, len(segments)):
        yield "/".join(segments[:end])


class MemoryStore:
    """A thread-safe dict of blobs; nothing survives the process."""

    _registry: ClassVar[dict[str, MemoryStore]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str = "", *, overlapping_names: bool = False) -> None:
        self._name = name
        self._blobs: dict[str, bytes] = {}
        self._folders: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._capabilities = StoreCapabilities(
            persistent=False, overlapping_names=overlapping_names
        )

    @classmethod
    def named(cls, name: str) -> MemoryStore:
        """Return the process-wide store called ``name``, creating it on first use."""
        with cls._registry_lock:
            store = cls._registry.get(name)
            if store is None:
                store = cls._registry[name] = cls(name)
            return store

    @classmethod
    def forget(cls, name: str) -> None:
        """Drop the process-wide store called ``name`` (its data goes with it)."""
        with cls._registry_lock:
            cls._registry.pop(name, None)

    @property
    def capabilities(self) -> StoreCapabilities:
        """What this store guarantees: everything but persistence."""
        return self._capabilities

    @property
    def url(self) -> str:
        """``memory://name``."""
        return f"memory://{self._name}"

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """Store a copy of ``data``; see :meth:`BlobStore.put`."""
        check_name(name)
        data = bytes(data)
        with self._lock:
            existing = self._blobs.get(name)
            if existing is not None:
                if exclusive and existing != data:
                    raise ConflictError(f"blob {name!r} already exists")
                self._blobs[name] = data
                return
            if not self._capabilities.overlapping_names:
                self._check_no_overlap(name)
            self._blobs[name] = data
            self._folders.update(_folders(name))

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Return the blob or a range of it; see :meth:`BlobStore.get`."""
        check_name(name)
        check_range(offset, length)
        with self._lock:
            data = self._blobs.get(name)
        if data is None:
            raise BlobNotFoundError(f"blob {name!r} not found in {self.url}")
        end = len(data) if length is None else offset + length
        return data[offset:end]

    def stat(self, name: str) -> BlobInfo:
        """Return the blob's size; see :meth:`BlobStore.stat`."""
        check_name(name)
        with self._lock:
            data = self._blobs.get(name)
        if data is None:
            raise BlobNotFoundError(f"blob {name!r} not found in {self.url}")
        return BlobInfo(name, len(data))

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Yield a snapshot of the blobs under ``prefix``; see :meth:`BlobStore.list`."""
        check_prefix(prefix)
        with self._lock:
            found = [
                BlobInfo(name, len(data))
                for name, data in self._blobs.items()
                if name.startswith(prefix)
            ]
        return iter(found)

    def delete(self, name: str) -> None:
        """Remove the blob if present; see :meth:`BlobStore.delete`."""
        check_name(name)
        with self._lock:
            if self._blobs.pop(name, None) is not None:
                for folder in _folders(name):
                    self._folders[folder] -= 1
                    if not self._folders[folder]:
                        del self._folders[folder]

    def _check_no_overlap(self, name: str) -> None:
        if self._folders[name]:
            raise ConflictError(f"blob name {name!r} is already a folder of other blobs")
        for folder in _folders(name):
            if folder in self._blobs:
                raise ConflictError(
                    f"blob name {name!r} lies under the existing blob {folder!r}",
                )

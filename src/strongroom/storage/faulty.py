"""A store wrapper that fails on purpose, for tests of the layers above storage.

It can make the Nth call of an operation raise a given error, act as a disk that fills
up after N more bytes, and flip a bit in what ``get`` returns for named blobs (the stored
bytes stay intact, as with a bad cable or a lying disk cache).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from strongroom.errors import ConfigError, InsufficientStorageError, StrongroomError
from strongroom.storage.base import (
    OPERATIONS,
    BlobInfo,
    BlobStore,
    StoreCapabilities,
    check_prefix,
)


@dataclass(frozen=True, slots=True)
class _Fault:
    operation: str
    first: int
    last: int
    error: StrongroomError


class FaultyStore:
    """Wraps a store; faults are set with :meth:`fail`, :meth:`fill_after`, :meth:`corrupt`."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        self._space_left: int | None = None
        self._corrupt_bits: dict[str, int] = {}

    @property
    def inner(self) -> BlobStore:
        """The wrapped store."""
        return self._inner

    @property
    def capabilities(self) -> StoreCapabilities:
        """The wrapped store's capabilities."""
        return self._inner.capabilities

    @property
    def url(self) -> str:
        """The wrapped store's URL."""
        return self._inner.url

    def fail(self, operation: str, error: StrongroomError, *, nth: int = 1, times: int = 1) -> None:
        """Make calls ``nth`` .. ``nth + times - 1`` of ``operation`` from now raise ``error``.

        ``nth=1`` is the next call. A failed call does not reach the wrapped store, so a
        failed put writes nothing. A failing ``list`` raises when its iteration starts.
        """
        if operation not in OPERATIONS or nth < 1 or times < 1:
            raise ConfigError(f"bad fault: {operation!r}, nth={nth}, times={times}")
        with self._lock:
            first = self._calls[operation] + nth
            self._faults.append(_Fault(operation, first, first + times - 1, error))

    def fill_after(self, capacity: int) -> None:
        """Act as a disk with ``capacity`` bytes free: a put that would pass it writes
        nothing and raises ``InsufficientStorageError``; smaller puts still fit."""
        with self._lock:
            self._space_left = capacity

    def corrupt(self, name: str, *, bit: int = 0) -> None:
        """Flip bit ``bit`` (counted from the blob's first byte) wherever ``get`` returns it."""
        if bit < 0:
            raise ConfigError(f"bad bit index {bit}")
        with self._lock:
            self._corrupt_bits[name] = bit

    def heal(self) -> None:
        """Remove every fault: scheduled failures, the space limit and corruptions."""
        with self._lock:
            self._faults.clear()
            self._space_left = None
            self._corrupt_bits.clear()

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """``put`` on the wrapped store, unless a fault or the space limit says otherwise."""
        self._count("put")
        with self._lock:
            if self._space_left is not None:
                if len(data) > self._space_left:
                    raise InsufficientStorageError(
                        f"no space left on {self.url} for {name!r} "
                        f"({len(data)} bytes, {self._space_left} free)"
                    )
                self._space_left -= len(data)
        try:
            self._inner.put(name, data, exclusive=exclusive)
        except BaseException:
            with self._lock:
                if self._space_left is not None:
                    self._space_left += len(data)
            raise

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """``get`` on the wrapped store, with the corrupted bit flipped if it is in range."""
        self._count("get")
        data = self._inner.get(name, offset, length)
        with self._lock:
            bit = self._corrupt_bits.get(name)
        if bit is None or not offset <= bit // 8 < offset + len(data):
            return data
        damaged = bytearray(data)
        damaged[bit // 8 - offset] ^= 1 << (bit % 8)
        return bytes(damaged)

    def stat(self, name: str) -> BlobInfo:
        """``stat`` on the wrapped store, unless a fault says otherwise."""
        self._count("stat")
        return self._inner.stat(name)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """``list`` on the wrapped store, unless a fault says otherwise."""
        check_prefix(prefix)
        return self._list(prefix)

    def delete(self, name: str) -> None:
        """``delete`` on the wrapped store, unless a fault says otherwise."""
        self._count("delete")
        self._inner.delete(name)

    def _list(self, prefix: str) -> Iterator[BlobInfo]:
        self._count("list")
        yield from self._inner.list(prefix)

    def _count(self, operation: str) -> None:
        """Count a call of ``operation`` and raise the error of a fault due on it."""
        with self._lock:
            self._calls[operation] += 1
            call = self._calls[operation]
            for fault in self._faults:
                if fault.operation == operation and fault.first <= call <= fault.last:
                    raise fault.error

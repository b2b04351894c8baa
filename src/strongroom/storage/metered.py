"""Count what a blob store does: calls, errors, time spent and bytes moved, per operation.

:meth:`MeteredStore.stats` returns an immutable snapshot; exporting it (Prometheus, the
run summary) belongs to the layers above.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from strongroom.storage.base import (
    OPERATIONS,
    BlobInfo,
    BlobStore,
    StoreCapabilities,
    check_prefix,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OperationStats:
    """Totals for one operation.

    ``calls`` counts every call, ``errors`` those that raised (a ``BlobNotFoundError``
    too), ``seconds`` the time spent inside the wrapped store (for ``list``, inside its
    iteration, not in the caller's loop).
    """

    calls: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class StoreStats:
    """A snapshot of a metered store's totals; bytes count successful puts and gets."""

    put: OperationStats = field(default_factory=OperationStats)
    get: OperationStats = field(default_factory=OperationStats)
    stat: OperationStats = field(default_factory=OperationStats)
    list: OperationStats = field(default_factory=OperationStats)
    delete: OperationStats = field(default_factory=OperationStats)
    bytes_written: int = 0
    bytes_read: int = 0

    def by_operation(self) -> dict[str, OperationStats]:
        """Return the per-operation totals keyed by operation name."""
        return {operation: getattr(self, operation) for operation in OPERATIONS}


class MeteredStore:
    """Wraps a store and keeps thread-safe totals of what passes through it."""

    def __init__(self, inner: BlobStore, *, clock: Callable[[], float] = time.perf_counter):
        self._inner = inner
        self._clock = clock
        self._lock = threading.Lock()
        self._operations = dict.fromkeys(OPERATIONS, OperationStats())
        self._bytes_written = 0
        self._bytes_read = 0

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

    def stats(self) -> StoreStats:
        """Return a consistent snapshot of the totals so far."""
        with self._lock:
            return StoreStats(
                **self._operations,
                bytes_written=self._bytes_written,
                bytes_read=self._bytes_read,
            )

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """``put`` on the wrapped store, counted."""
        self._measure(
            "put", lambda: self._inner.put(name, data, exclusive=exclusive), written=len(data)
        )

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """``get`` on the wrapped store, counted."""
        return self._measure("get", lambda: self._inner.get(name, offset, length), read=len)

    def stat(self, name: str) -> BlobInfo:
        """``stat`` on the wrapped store, counted."""
        return self._measure("stat", lambda: self._inner.stat(name))

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """``list`` on the wrapped store, counted once when the iteration ends."""
        check_prefix(prefix)
        return self._list(prefix)

    def delete(self, name: str) -> None:
        """``delete`` on the wrapped store, counted."""
        self._measure("delete", lambda: self._inner.delete(name))

    def _measure(
        self,
        operation: str,
        call: Callable[[], T],
        *,
        written: int = 0,
        read: Callable[[T], int] | None = None,
    ) -> T:
        started = self._clock()
        try:
            result = call()
        except BaseException:
            self._record(operation, self._clock() - started, failed=True)
            raise
        bytes_read = read(result) if read is not None else 0
        self._record(
            operation, self._clock() - started, failed=False, written=written, read=bytes_read
        )
        return result

    def _list(self, prefix: str) -> Iterator[BlobInfo]:
        seconds = 0.0
        failed = True
        iterator: Iterator[BlobInfo] | None = None
        try:
            while True:
                started = self._clock()
                try:
                    if iterator is None:
                        iterator = self._inner.list(prefix)
                    info = next(iterator)
                except StopIteration:
                    break
                finally:
                    seconds += self._clock() - started
                yield info
            failed = False
        except GeneratorExit:
            failed = False  # the caller stopped early; that is not an error of the store
            raise
        finally:
            self._record("list", seconds, failed=failed)

    def _record(
        self, operation: str, seconds: float, *, failed: bool, written: int = 0, read: int = 0
    ) -> None:
        with self._lock:
            current = self._operations[operation]
            self._operations[operation] = OperationStats(
                calls=current.calls + 1,
                errors=current.errors + int(failed),
                seconds=current.seconds + seconds,
            )
            self._bytes_written += written
            self._bytes_read += read

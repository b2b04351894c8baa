"""A store wrapper that fails on purpose, for tests of the layers above storage.

It can make the Nth call of an operation raise a given error, act as a disk that fills
up after N more bytes, and flip a bit in what ``get`` returns for named blobs (the stored
bytes stay intact, as with a bad cable or a lying disk cache). For tests of concurrent
protocols it can add latency to every call (:meth:`FaultyStore.add_latency`), let
listings lag behind puts and deletes (:meth:`FaultyStore.delay_listings`, as an
eventually consistent object store would), and run a callback right before a chosen
call (:meth:`FaultyStore.before`), to put another actor's step at an exact point.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from strongroom.errors import ConfigError, InsufficientStorageError, NotFoundError, StrongroomError
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


@dataclass(frozen=True, slots=True)
class _Hook:
    operation: str
    prefix: str
    action: Callable[[], object]


@dataclass(frozen=True, slots=True)
class _Change:
    shown_from: int
    """The list call from which listings show this change."""
    name: str
    size: int | None
    """The size of a put; None for a delete."""


class FaultyStore:
    """Wraps a store; faults are set with :meth:`fail`, :meth:`fill_after`, :meth:`corrupt`,
    :meth:`add_latency`, :meth:`delay_listings` and :meth:`before`."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        self._space_left: int | None = None
        self._corrupt_bits: dict[str, int] = {}
        self._latency: tuple[float, random.Random] | None = None
        self._hooks: list[_Hook] = []
        self._lag: tuple[int, str] | None = None
        self._listings = 0
        self._shown: dict[str, int] = {}
        self._changes: deque[_Change] = deque()

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

    def add_latency(self, seconds: float, *, seed: int = 0) -> None:
        """Sleep a random time between 0 and ``seconds`` before every call (seeded)."""
        if seconds < 0:
            raise ConfigError(f"latency must not be negative, not {seconds}")
        with self._lock:
            self._latency = (seconds, random.Random(seed))  # noqa: S311 - jitter, not secrets

    def delay_listings(self, calls: int, prefix: str = "") -> None:
        """Let listings of names under ``prefix`` lag: a put or delete shows in listings
        only once ``calls`` more ``list`` calls have started. Changes show in the order
        they were made (each listing is a consistent, if old, view); ``get``, ``stat``
        and ``delete`` see the present at once."""
        if calls < 1:
            raise ConfigError(f"a listing delay must be at least 1 call, not {calls}")
        check_prefix(prefix)
        snapshot = {info.name: info.size for info in self._inner.list(prefix)}
        with self._lock:
            self._lag = (calls, prefix)
            self._shown = snapshot
            self._changes.clear()

    def before(self, operation: str, prefix: str, action: Callable[[], object]) -> None:
        """Run ``action`` once, right before the next ``operation`` on a name starting
        with ``prefix`` (for ``list``: a listing of such a prefix) reaches the store."""
        if operation not in OPERATIONS:
            raise ConfigError(f"unknown operation {operation!r}")
        with self._lock:
            self._hooks.append(_Hook(operation, prefix, action))

    def clear_hooks(self) -> None:
        """Drop the callbacks of :meth:`before` that have not run yet."""
        with self._lock:
            self._hooks.clear()

    def heal(self) -> None:
        """Remove every fault: scheduled failures, the space limit, corruptions, latency,
        listing delays and hooks not yet run."""
        with self._lock:
            self._faults.clear()
            self._space_left = None
            self._corrupt_bits.clear()
            self._latency = None
            self._hooks.clear()
            self._lag = None
            self._changes.clear()

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """``put`` on the wrapped store, unless a fault or the space limit says otherwise."""
        self._count("put", name)
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
        self._changed(name, len(data))

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """``get`` on the wrapped store, with the corrupted bit flipped if it is in range."""
        self._count("get", name)
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
        self._count("stat", name)
        return self._inner.stat(name)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """``list`` on the wrapped store, unless a fault says otherwise."""
        check_prefix(prefix)
        return self._list(prefix)

    def delete(self, name: str) -> None:
        """``delete`` on the wrapped store, unless a fault says otherwise."""
        self._count("delete", name)
        lagging = self._lag is not None and name.startswith(self._lag[1])
        existed = True
        if lagging:
            try:
                self._inner.stat(name)
            except NotFoundError:
                existed = False
        self._inner.delete(name)
        if existed:
            self._changed(name, None)

    def _list(self, prefix: str) -> Iterator[BlobInfo]:
        self._count("list", prefix)
        with self._lock:
            lag = self._lag
            self._listings += 1
            while self._changes and self._changes[0].shown_from <= self._listings:
                change = self._changes.popleft()
                if change.size is None:
                    self._shown.pop(change.name, None)
                else:
                    self._shown[change.name] = change.size
            shown = dict(self._shown)
        if lag is None or not (prefix.startswith(lag[1]) or lag[1].startswith(prefix)):
            yield from self._inner.list(prefix)
            return
        for info in self._inner.list(prefix):
            if not info.name.startswith(lag[1]):
                yield info
        for name in sorted(shown):
            if name.startswith(prefix):
                yield BlobInfo(name, shown[name])

    def _changed(self, name: str, size: int | None) -> None:
        with self._lock:
            if self._lag is not None and name.startswith(self._lag[1]):
                shown_from = self._listings + self._lag[0] + 1
                self._changes.append(_Change(shown_from, name, size))

    def _count(self, operation: str, name: str) -> None:
        """Count a call of ``operation``, run a hook due on it, sleep the latency, and
        raise the error of a fault due on it."""
        with self._lock:
            hook = next(
                (h for h in self._hooks if h.operation == operation and name.startswith(h.prefix)),
                None,
            )
            if hook is not None:
                self._hooks.remove(hook)
            latency = self._latency
            pause = latency[1].random() * latency[0] if latency is not None else 0.0
        if hook is not None:
            hook.action()
        if pause:
            time.sleep(pause)
        with self._lock:
            self._calls[operation] += 1
            call = self._calls[operation]
            for fault in self._faults:
                if fault.operation == operation and fault.first <= call <= fault.last:
                    raise fault.error

"""One stream of a recovery point being written: a writable file-like object.

Data goes into a fixed-size *window* (``write`` copies into it; ``write_from`` reads a
file straight into it). A full window is cut into chunks by the caller's thread (FastCDC
holds the GIL, for about 5 ms a window), or by replaying the previous version's cuts
(:mod:`strongroom.vault.replay`). The chunks are handed to the writer's thread pool as
views of the window, without copies; BLAKE3 and zstd release the GIL there. The keyed
hash of the whole stream runs on the writer's hashing thread, window by window, in
order. Results are placed into packs in stream order. Windows are recycled once their
chunks and hash are done.

Back-pressure: at most ``in_flight`` chunks, and at most a window's worth of bytes, are
queued; a fast source waits instead of buffering without bound. A stream holds at most
four windows: the one being filled, two whose chunks are still queued, one spare. A
finished stream hands its windows to the writer's :class:`WindowPool`, so the next stream
starts with a whole window instead of growing (and zero-filling) one again.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from strongroom.errors import ConfigError
from strongroom.logs import get_logger
from strongroom.vault.chunker import StreamChunker
from strongroom.vault.manifest import INLINE_CHUNKS, LIST_CHUNK_IDS, StreamRecord
from strongroom.vault.packer import Packer, Prepared
from strongroom.vault.replay import ChunkReplay

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

    from strongroom.vault.crypto import GenerationKeys

_LIST_BYTES: Final = LIST_CHUNK_IDS * 32
_log = get_logger(__name__)
_SPARE_WINDOWS: Final = 1
_RETIRED_WINDOWS: Final = 2
"""Windows waiting for their chunks or hash before the writer waits for the oldest."""
_POOLED_WINDOWS: Final = 4


class WindowPool:
    """Whole windows that finished streams left, for the next streams of one writer
    (thread-safe; keeps at most a few)."""

    def __init__(self, window_size: int) -> None:
        self.window_size = window_size
        self._lock = threading.Lock()
        self._windows: list[bytearray] = []

    def take(self) -> bytearray | None:
        """A whole window, if one is free."""
        with self._lock:
            return self._windows.pop() if self._windows else None

    def give(self, window: bytearray) -> None:
        """Keep ``window`` (no views of it may remain) if it is whole and there is room."""
        if len(window) != self.window_size:
            return
        with self._lock:
            if len(self._windows) < _POOLED_WINDOWS:
                self._windows.append(window)


@runtime_checkable
class Readable(Protocol):
    """A binary file object that can read into a buffer."""

    def readinto(self, buffer: WriteableBuffer, /) -> int | None:
        """Read into ``buffer``; return the count, 0 at the end."""
        ...


Cut = tuple[int, int, bytes | None]
"""A chunk of a window: start, end and, when already computed, its id."""


class StreamWriter(io.RawIOBase):
    """Writable stream; :meth:`close` finishes it, leaving it in the recovery point.

    Used from one thread at a time. Leaving a ``with`` block by an exception (or being
    garbage-collected unclosed) *abandons* the stream instead: a partial stream is never
    recorded as whole, and the writer refuses to commit.
    """

    def __init__(
        self,
        *,
        name: str,
        keys: GenerationKeys,
        chunker: StreamChunker,
        packer: Packer,
        pool: ThreadPoolExecutor,
        hashing: ThreadPoolExecutor,
        in_flight: int,
        on_close: Callable[[StreamWriter, StreamRecord | None], None],
        check: Callable[[], None],
        replay: ChunkReplay | None = None,
        windows: WindowPool | None = None,
    ) -> None:
        """``hashing`` must run one task at a time, in submission order."""
        super().__init__()
        self.name = name
        self._keys = keys
        self._chunker = chunker
        self._packer = packer
        self._pool = pool
        self._hashing = hashing
        self._limit = max(1, in_flight)
        self._on_close = on_close
        self._check = check
        self._replay = replay
        self._hasher = keys.stream_hasher()
        self._size = 0
        self._window_size = chunker.window
        self._windows = windows if windows is not None else WindowPool(chunker.window)
        # a pooled whole window, or one that grows to the window size (small streams stay small)
        self._window = self._windows.take() or bytearray()
        self._fill = 0
        self._spares: list[bytearray] = []
        self._retired: deque[tuple[int, bytearray, Future[object] | None]] = deque()
        self._queue: deque[tuple[Future[Prepared], int]] = deque()
        self._queued_bytes = 0
        self._submitted = 0
        self._collected = 0
        self._ids = bytearray()
        self._lists: list[bytes] = []
        self._count = 0
        self._done = False

    @property
    def replayed_chunks(self) -> int:
        """Chunks whose cut was replayed from the previous version of the stream."""
        return 0 if self._replay is None else self._replay.replayed

    def writable(self) -> bool:
        """True: this is a writable stream."""
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        """Append ``data``; returns its length. Raises writer errors (upload, storage)."""
        if self._done:
            raise ValueError(f"stream {self.name!r} is closed")
        self._check()
        view = memoryview(data).cast("B")
        try:
            position, total = 0, len(view)
            while position < total:
                count = min(self._window_size - self._fill, total - position)
                self._grow(self._fill + count)
                self._window[self._fill : self._fill + count] = view[position : position + count]
                self._fill += count
                position += count
                if self._fill == self._window_size:
                    self._cut(final=False)
            self._size += total
        except BaseException:
            self.abandon()
            raise
        return total

    def write_from(self, source: Readable) -> int:
        """Read ``source`` to its end straight into the chunking window (no copy).

        Returns the bytes read. Raises what reading raises (the stream is then
        abandoned), ``ConfigError`` for a non-blocking source with nothing to read, and
        writer errors.
        """
        if self._done:
            raise ValueError(f"stream {self.name!r} is closed")
        self._check()
        total = 0
        try:
            self._grow(self._window_size)
            while True:
                with memoryview(self._window) as whole:
                    count = source.readinto(whole[self._fill :])
                if count is None:
                    raise ConfigError(f"stream {self.name!r}: the source would block")
                if not count:
                    return total
                self._fill += count
                self._size += count
                total += count
                if self._fill == self._window_size:
                    self._cut(final=False)
        except BaseException:
            self.abandon()
            raise

    def close(self) -> None:
        """Finish the stream: chunk what remains, wait for its chunks, record it.

        Raises writer errors; then the stream is abandoned.
        """
        if self._done:
            return
        try:
            self._check()
            self._cut(final=True)
            while self._queue:
                self._collect()
            for _, window, hashing in self._retired:
                if hashing is not None:
                    hashing.result()
                self._windows.give(window)
            self._retired.clear()
            for window in self._spares:
                self._windows.give(window)
            self._spares.clear()
            record = self._record()
        except BaseException:
            self.abandon()
            raise
        self._done = True
        super().close()
        self._on_close(self, record)

    def abandon(self) -> None:
        """Drop the stream without recording it (the writer will refuse to commit)."""
        if self._done:
            return
        self._done = True
        for future, _ in self._queue:
            future.cancel()
        self._queue.clear()
        super().close()
        self._on_close(self, None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    def __del__(self) -> None:
        if not self._done:
            # The one way a stream ends that nobody else reports: an exception that
            # abandons a stream reaches the caller, who reports it (once).
            _log.warning("stream %r was dropped without close(); it is abandoned", self.name)
            self.abandon()

    # -- chunking ---------------------------------------------------------------------

    def _grow(self, needed: int) -> None:
        """Make the window hold ``needed`` bytes (it has no views out before its cut)."""
        size = len(self._window)
        if size >= needed:
            return
        grown = bytearray(min(self._window_size, max(needed, 2 * size, 64 * 1024)))
        grown[: self._fill] = memoryview(self._window)[: self._fill]
        self._window = grown

    def _cut(self, *, final: bool) -> None:
        """Cut the window into chunks, hand them out, and carry the held-back rest over
        into a fresh window."""
        window, fill = self._window, self._fill
        view = memoryview(window)[:fill]
        replay = self._replay
        if replay is None or not replay.active:
            cuts = self._cuts(view, final=final)
        else:
            cuts = self._replays(view, final, replay)
        consumed = cuts[-1][1] if cuts else 0
        hashing: Future[object] | None = None
        if consumed:
            hashing = self._hashing.submit(self._hasher.update, view[:consumed])
            for start, end, chunk_id in cuts:
                self._submit(view[start:end], chunk_id)
        self._retired.append((self._submitted, window, hashing))
        if final:
            self._window, self._fill = bytearray(), 0
            return
        while len(self._retired) >= _RETIRED_WINDOWS:
            self._wait_retired()
        fresh = self._spares.pop() if self._spares else self._fresh_window()
        rest = fill - consumed
        fresh[:rest] = view[consumed:fill]
        self._window, self._fill = fresh, rest

    def _fresh_window(self) -> bytearray:
        return self._windows.take() or bytearray(self._window_size)

    def _cuts(self, view: memoryview, *, final: bool) -> list[Cut]:
        ends = self._chunker.cuts(view, 0, final=final)
        starts = [0, *ends[:-1]] if ends else []
        return [(start, end, None) for start, end in zip(starts, ends, strict=True)]

    def _replays(self, view: memoryview, final: bool, replay: ChunkReplay) -> list[Cut]:
        """Cut by replaying the previous version's chunks while the bytes match; from
        the first mismatch to the end of the window, by FastCDC (which may find the
        previous chunks again)."""
        chunk_id_of = self._keys.chunk_id
        cuts: list[Cut] = []
        position, fill = 0, len(view)
        while position < fill:
            expected = replay.expected()
            if expected is not None:
                expected_id, length, last = expected
                end = position + length
                if end > fill and not final:
                    return cuts  # the window ends inside it: wait for more data
                if end <= fill and (not last or (final and end == fill)):
                    chunk_id = chunk_id_of(view[position:end])
                    if chunk_id == expected_id:
                        replay.matched()
                        cuts.append((position, end, chunk_id))
                        position = end
                        continue
            start = position
            for end in self._chunker.cuts(view, start, final=final):
                chunk_id = chunk_id_of(view[start:end])
                replay.observe(chunk_id)
                cuts.append((start, end, chunk_id))
                start = end
            return cuts
        return cuts

    def _submit(self, data: memoryview, chunk_id: bytes | None) -> None:
        while self._queue and (
            len(self._queue) >= self._limit or self._queued_bytes + len(data) > self._window_size
        ):
            self._collect()
        future = self._pool.submit(self._packer.prepare, data, chunk_id)
        self._queue.append((future, len(data)))
        self._queued_bytes += len(data)
        self._submitted += 1

    def _collect(self) -> None:
        future, size = self._queue.popleft()
        self._queued_bytes -= size
        prepared = future.result()
        del future
        self._collected += 1
        self._packer.place(prepared)
        self._ids += prepared.chunk_id
        del prepared  # its view must not outlive the window's recycling
        self._count += 1
        if len(self._ids) >= _LIST_BYTES:
            self._store_list()
        self._recycle()

    def _wait_retired(self) -> None:
        mark, _, hashing = self._retired[0]
        while self._collected < mark:
            self._collect()
        if hashing is not None:
            hashing.result()
        self._recycle()

    def _recycle(self) -> None:
        """Reuse windows whose chunks were all placed and whose hash is done."""
        while self._retired:
            mark, window, hashing = self._retired[0]
            if self._collected < mark or (hashing is not None and not hashing.done()):
                return
            self._retired.popleft()
            if len(self._spares) < _SPARE_WINDOWS and len(window) == self._window_size:
                self._spares.append(window)

    def _store_list(self) -> None:
        prepared = self._packer.prepare(memoryview(bytes(self._ids)))
        self._packer.place(prepared)
        self._lists.append(prepared.chunk_id)
        self._ids.clear()

    def _record(self) -> StreamRecord:
        if self._count <= INLINE_CHUNKS:
            chunks: list[str] | None = [
                self._ids[start : start + 32].hex() for start in range(0, len(self._ids), 32)
            ]
            lists = None
        else:
            if self._ids:
                self._store_list()
            chunks, lists = None, [chunk_id.hex() for chunk_id in self._lists]
        try:
            return StreamRecord(
                name=self.name,
                size=self._size,
                hash=self._hasher.hexdigest(),
                chunk_count=self._count,
                chunks=chunks,
                chunk_lists=lists,
            )
        except ValueError as exc:
            raise ConfigError(f"invalid stream {self.name!r}: {exc}") from exc

"""One stream of a recovery point being written: a writable file-like object.

The caller's thread chunks the data (FastCDC holds the GIL, briefly) and hands chunks to
the writer's thread pool (BLAKE3 and zstd release it); results are placed into packs in
stream order. At most ``in_flight`` chunks are queued: a fast source waits instead of
buffering without bound.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING

from strongroom.errors import ConfigError
from strongroom.vault.chunker import StreamChunker
from strongroom.vault.manifest import INLINE_CHUNKS, LIST_CHUNK_IDS, StreamRecord
from strongroom.vault.packer import Packer, Prepared

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from strongroom.vault.crypto import GenerationKeys

_LIST_BYTES = LIST_CHUNK_IDS * 32


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
        in_flight: int,
        on_close: Callable[[StreamWriter, StreamRecord | None], None],
        check: Callable[[], None],
    ) -> None:
        super().__init__()
        self.name = name
        self._chunker = chunker
        self._packer = packer
        self._pool = pool
        self._limit = max(1, in_flight)
        self._on_close = on_close
        self._check = check
        self._hasher = keys.stream_hasher()
        self._size = 0
        self._queue: deque[Future[Prepared]] = deque()
        self._ids = bytearray()
        self._lists: list[bytes] = []
        self._count = 0
        self._done = False

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
            self._hasher.update(view)
            self._size += len(view)
            for chunk in self._chunker.feed(view):
                self._submit(chunk)
        except BaseException:
            self.abandon()
            raise
        return len(view)

    def close(self) -> None:
        """Finish the stream: chunk what remains, wait for its chunks, record it.

        Raises writer errors; then the stream is abandoned.
        """
        if self._done:
            return
        try:
            self._check()
            for chunk in self._chunker.finish():
                self._submit(chunk)
            while self._queue:
                self._collect()
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
        for future in self._queue:
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
            self.abandon()

    def _submit(self, chunk: bytes) -> None:
        while len(self._queue) >= self._limit:
            self._collect()
        self._queue.append(self._pool.submit(self._packer.prepare, chunk))

    def _collect(self) -> None:
        prepared = self._queue.popleft().result()
        self._packer.place(prepared)
        self._ids += prepared.chunk_id
        self._count += 1
        if len(self._ids) >= _LIST_BYTES:
            self._store_list()

    def _store_list(self) -> None:
        prepared = self._packer.prepare(bytes(self._ids))
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

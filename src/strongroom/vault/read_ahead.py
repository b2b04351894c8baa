"""Read-ahead across streams: fetch the next streams' chunks while one is being written.

A restore that reads many streams one after another (a files restore reads each of its
content streams in turn) would start every stream's read-ahead cold: the first segments
of each stream are fetched only once the stream is opened, while the writer waits. When
the reader is told which streams come next (:meth:`VaultReader.read_ahead`), one
:class:`StreamPlan` keeps segments in flight across their boundaries instead.

What does not change: every chunk is checked before its piece is handed out, and a
failure (a damaged chunk, a chunk that cannot be located) is raised only to the reader of
the stream it belongs to, when that reader gets to it; a stream read before it is not
affected. Reading a stream out of turn, or leaving one before its recorded size was
read, drops the plan (the streams after it are then read one at a time, as without one).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from strongroom.errors import StrongroomError
from strongroom.vault.fetch import (
    ChunkFetcher,
    InFlight,
    PlannedSegment,
    Segment,
    SegmentBuffers,
    fetch_ahead,
)

if TYPE_CHECKING:
    from strongroom.vault.manifest import StreamRecord


class StreamPlan:
    """The streams a reader will read next, in order, with their segments in flight."""

    def __init__(
        self,
        records: Sequence[StreamRecord],
        segments_of: Callable[[StreamRecord, str], Iterator[Segment]],
        what_of: Callable[[StreamRecord], str],
        fetcher: ChunkFetcher,
        pool: ThreadPoolExecutor,
        buffers: SegmentBuffers,
        *,
        max_bytes: int,
        max_segments: int,
    ) -> None:
        """``segments_of(record, what)`` yields a stream's segments in order."""
        self._records = list(records)
        self._segments_of = segments_of
        self._what_of = what_of
        self._buffers = buffers
        self._position = 0
        self._waiting: InFlight | None = None
        self.dropped = False
        """Set once the plan no longer matches what is read; the reader then drops it."""
        self._reads = fetch_ahead(
            fetcher,
            self._planned(),
            pool,
            buffers,
            max_bytes=max_bytes,
            max_segments=max_segments,
        )

    def is_next(self, name: str) -> bool:
        """Tell whether stream ``name`` is the one the plan expects to be read next."""
        return (
            not self.dropped
            and self._position < len(self._records)
            and self._records[self._position].name == name
        )

    def pieces(self) -> Generator[memoryview, None, None]:
        """Yield the checked pieces of the next stream of the plan (as
        :func:`~strongroom.vault.fetch.prefetch` does: each valid until the next one is
        asked for). Raises what reading that stream raised."""
        record = self._records[self._position]
        number = self._position
        read = 0
        current: InFlight | None = None
        try:
            while (item := self._next_read()) is not None:
                if item.stream != number:
                    self._waiting = item  # the next stream's first segment
                    break
                current = item
                for piece in item.future.result():
                    read += len(piece)
                    yield piece
                self._give_back(current)
                current = None
        finally:
            self._finish(number, read == record.size, current)

    def close(self) -> None:
        """Cancel the reads not started."""
        self.dropped = True
        self._reads.close()

    def _planned(self) -> Generator[PlannedSegment, None, None]:
        for number, record in enumerate(self._records):
            what = self._what_of(record)
            try:
                for segment in self._segments_of(record, what):
                    yield number, segment, what
            except StrongroomError as error:  # raised to this stream's reader when it gets there
                yield number, error, what
                return

    def _next_read(self) -> InFlight | None:
        if self._waiting is not None:
            item, self._waiting = self._waiting, None
            return item
        return next(self._reads, None)

    def _give_back(self, item: InFlight) -> None:
        if item.buffer is not None:
            self._buffers.give(item.buffer)

    def _finish(self, number: int, whole: bool, current: InFlight | None) -> None:
        """After a stream's reader stopped: move on to the next stream when it read the
        stream's recorded size and nothing of the stream is left, else drop the plan."""
        if current is not None:
            self._give_back(current)  # its reader is gone: nobody holds its pieces
        if whole and self._waiting is None:
            try:
                following = self._next_read()
            except (RuntimeError, StrongroomError):  # a pool shut down, a chunk not located
                following, whole = None, False
            if following is not None and following.stream == number:
                whole = False  # more than the recorded size: let a fresh read report it
            self._waiting = following
        if whole:
            self._position = number + 1
        else:
            self.close()

"""Fetching chunks: find them in the index, read them with ranged gets, check them.

Adjacent chunks of one pack are read in one request (a *segment*). :func:`prefetch` keeps
a bounded number of segments in flight on a thread pool (download, decrypt, decompress
and id check all run there), yielding plaintext in order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from strongroom.errors import IntegrityError, NotFoundError
from strongroom.storage.base import BlobStore
from strongroom.vault.cache import IndexCache, Location
from strongroom.vault.keyring import Keyring
from strongroom.vault.pack import PackKeys, open_chunk_into

MIN_BUFFER: Final = 1 << 20


@dataclass(slots=True)
class Segment:
    """Contiguous chunks of one pack, read with one ranged get."""

    first: Location
    locations: list[Location] = field(default_factory=list)
    raw_bytes: int = 0
    """Plaintext bytes of the segment's chunks."""

    @property
    def start(self) -> int:
        """Offset of the first chunk in the pack."""
        return self.first.entry.offset

    @property
    def end(self) -> int:
        """Offset just past the last chunk."""
        last = self.locations[-1].entry
        return last.offset + last.stored_length

    def extends(self, location: Location, max_bytes: int) -> bool:
        """Tell whether ``location`` directly follows this segment in the same pack and
        the segment stays within ``max_bytes``, stored and plaintext."""
        entry = location.entry
        return (
            location.pack_digest == self.first.pack_digest
            and entry.offset == self.end
            and entry.offset + entry.stored_length - self.start <= max_bytes
            and self.raw_bytes + entry.raw_length <= max_bytes
        )

    def append(self, location: Location) -> None:
        """Add the next chunk."""
        self.locations.append(location)
        self.raw_bytes += location.entry.raw_length


def group_segments(locations: Iterable[Location], max_bytes: int) -> Iterator[Segment]:
    """Group consecutive locations into segments of at most ``max_bytes`` (stored and
    plaintext; a larger chunk is a segment of its own)."""
    segment: Segment | None = None
    for location in locations:
        if segment is not None and segment.extends(location, max_bytes):
            segment.append(location)
            continue
        if segment is not None:
            yield segment
        segment = Segment(location)
        segment.append(location)
    if segment is not None:
        yield segment


class ChunkFetcher:
    """Reads and checks chunks of one vault (thread-safe)."""

    def __init__(
        self,
        store: BlobStore,
        cache: IndexCache,
        keyring: Keyring,
        resync: Callable[[], object] | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._keyring = keyring
        self._pack_keys = PackKeys(keyring.data_key)
        self._resync = resync
        self._resync_lock = threading.Lock()
        self._syncs = 0

    def locate(self, chunk_id: bytes, generation: int, what: str) -> Location:
        """Return where chunk ``chunk_id`` of key generation ``generation`` is stored.

        If the index does not know it, the index cache is synced and asked again (another
        writer may have committed since the vault was opened). Raises ``IntegrityError`` naming
        ``what`` if the chunk is still unknown or lies in a pack of another generation.
        """
        syncs = self._syncs
        location = self._cache.locate(chunk_id)
        if location is None and self._resync is not None:
            with self._resync_lock:
                if syncs == self._syncs:  # nobody synced since we looked
                    self._resync()
                    self._syncs += 1
            location = self._cache.locate(chunk_id)
        if location is None:
            raise IntegrityError(f"{what}: chunk {chunk_id.hex()} is in no index fragment")
        if location.generation != generation:
            raise IntegrityError(
                f"{what}: chunk {chunk_id.hex()} lies in a pack of key generation "
                f"{location.generation}, not {generation}"
            )
        return location

    def locate_many(self, chunk_ids: Sequence[bytes], generation: int, what: str) -> list[Location]:
        """Return the locations of ``chunk_ids``, in order (see :meth:`locate`)."""
        found = self._cache.locate_many(chunk_ids)
        locations = []
        for chunk_id in chunk_ids:
            location = found.get(chunk_id)
            if location is None or location.generation != generation:
                location = self.locate(chunk_id, generation, what)
            locations.append(location)
        return locations

    def read_segment(
        self, segment: Segment, what: str, buffer: bytearray | None = None
    ) -> list[memoryview]:
        """Read one segment and return the checked plaintext of its chunks, in order, as
        views into ``buffer`` (at least ``segment.raw_bytes`` long; a new one if None).

        A pack that is gone may have been repacked by a GC since the index was synced:
        the index is synced and each chunk looked up again once. Raises
        ``IntegrityError`` naming ``what`` (and the pack) when the pack is missing, short
        or altered; ``buffer`` then holds garbage.
        """
        if buffer is None:
            buffer = bytearray(segment.raw_bytes)
        elif len(buffer) < segment.raw_bytes:
            raise ValueError("the buffer is smaller than the segment's plaintext")
        target = memoryview(buffer)
        syncs = self._syncs
        name = segment.first.pack_name
        try:
            data = self._store.get(name, segment.start, segment.end - segment.start)
        except NotFoundError as exc:
            if self._resync is not None:
                return self._read_moved(segment, syncs, target, what)
            raise IntegrityError(f"{what}: pack {name} is missing") from exc
        return self._open_segment(segment, data, target, what)

    def _open_segment(
        self, segment: Segment, data: bytes, target: memoryview, what: str
    ) -> list[memoryview]:
        first = segment.first
        name = first.pack_name
        if len(data) != segment.end - segment.start:
            raise IntegrityError(f"{what}: pack {name} is truncated")
        aead = self._pack_keys.aead(first.generation, first.salt)
        keys = self._keyring.get(first.generation)
        view = memoryview(data)
        plaintexts = []
        position = 0
        for location in segment.locations:
            entry = location.entry
            start = entry.offset - segment.start
            piece = target[position : position + entry.raw_length]
            open_chunk_into(
                aead,
                entry,
                view[start : start + entry.stored_length],
                piece,
                keys,
                f"{what}: pack {name}",
            )
            plaintexts.append(piece)
            position += entry.raw_length
        return plaintexts

    def _read_moved(
        self, segment: Segment, syncs: int, target: memoryview, what: str
    ) -> list[memoryview]:
        """Read a segment's chunks after their pack vanished, from wherever the synced
        index now places them (never from the vanished pack)."""
        with self._resync_lock:
            if syncs == self._syncs and self._resync is not None:
                self._resync()
                self._syncs += 1
        gone = segment.first.pack_digest
        plaintexts: list[memoryview] = []
        position = 0
        for old in segment.locations:
            location = self._cache.locate(old.entry.chunk_id)
            if (
                location is None
                or location.pack_digest == gone
                or location.generation != old.generation
                or location.entry.raw_length != old.entry.raw_length
            ):
                raise IntegrityError(f"{what}: pack {segment.first.pack_name} is missing")
            moved = Segment(location)
            moved.append(location)
            try:
                data = self._store.get(location.pack_name, moved.start, moved.end - moved.start)
            except NotFoundError as exc:
                raise IntegrityError(f"{what}: pack {location.pack_name} is missing") from exc
            length = location.entry.raw_length
            plaintexts.extend(
                self._open_segment(moved, data, target[position : position + length], what)
            )
            position += length
        return plaintexts

    def read_chunk(self, chunk_id: bytes, generation: int, what: str) -> bytes:
        """Locate and read one chunk; raises ``IntegrityError`` naming ``what``."""
        location = self.locate(chunk_id, generation, what)
        segment = Segment(location)
        segment.append(location)
        return bytes(self.read_segment(segment, what)[0])


class SegmentBuffers:
    """Plaintext buffers handed from one segment to the next (thread-safe).

    A restore decompresses every segment into a buffer taken here and gives it back once
    its pieces are written: the same few buffers serve a whole restore, instead of a new
    object (and fresh pages the kernel must fault in) per chunk.
    """

    def __init__(self, keep: int) -> None:
        """``keep``: how many free buffers are kept at most."""
        self._keep = keep
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        """Return a free buffer of at least ``size`` bytes (a new one when none fits)."""
        with self._lock:
            fitting = [buffer for buffer in self._free if len(buffer) >= size]
            if fitting:
                smallest = min(fitting, key=len)
                self._free.remove(smallest)
                return smallest
        return bytearray(max(size, MIN_BUFFER))

    def give(self, buffer: bytearray) -> None:
        """Take back a buffer no piece refers to any more (the largest are let go first,
        so a few big segments do not keep their memory for the small ones after them)."""
        with self._lock:
            self._free.append(buffer)
            if len(self._free) > self._keep:
                self._free.remove(max(self._free, key=len))


@dataclass(slots=True)
class InFlight:
    """One segment on its way: which planned stream it belongs to, the future of its
    checked pieces and the buffer they are written into (give it back once they are)."""

    stream: int
    future: Future[list[memoryview]]
    buffer: bytearray | None


PlannedSegment = tuple[int, "Segment | Exception", str]
"""A segment to fetch: its stream's number, the segment (or why its stream's chunks could
not be located, raised when that stream's reader gets there) and the stream's ``what``."""


def fetch_ahead(
    fetcher: ChunkFetcher,
    planned: Iterable[PlannedSegment],
    pool: ThreadPoolExecutor,
    buffers: SegmentBuffers,
    *,
    max_bytes: int,
    max_segments: int,
) -> Generator[InFlight, None, None]:
    """Yield the read of every planned segment, in order, keeping reads in flight ahead.

    At most ``max_segments`` segments and about ``max_bytes`` (the larger of a segment's
    stored and plaintext bytes) are in flight beyond the one last yielded. A failure,
    whether of a read or of locating a stream's chunks, is raised only by the ``future``
    of the segment it concerns, so a reader of an earlier stream never sees it. Closing
    the generator cancels the reads not started.
    """
    queue: deque[tuple[InFlight, int]] = deque()
    in_flight = 0
    try:
        for stream, segment, what in planned:
            if isinstance(segment, Exception):
                failed: Future[list[memoryview]] = Future()
                failed.set_exception(segment)
                queue.append((InFlight(stream, failed, None), 0))
                continue
            size = max(segment.end - segment.start, segment.raw_bytes)
            while queue and (in_flight + size > max_bytes or len(queue) >= max_segments):
                item, done_size = queue.popleft()
                in_flight -= done_size
                yield item
            buffer = buffers.take(segment.raw_bytes)
            future = pool.submit(fetcher.read_segment, segment, what, buffer)
            queue.append((InFlight(stream, future, buffer), size))
            in_flight += size
        while queue:
            yield queue.popleft()[0]
    finally:
        for item, _ in queue:
            item.future.cancel()


def prefetch(
    fetcher: ChunkFetcher,
    segments: Iterable[Segment],
    pool: ThreadPoolExecutor,
    buffers: SegmentBuffers,
    *,
    max_bytes: int,
    max_segments: int,
    what: str,
) -> Generator[memoryview, None, None]:
    """Yield the plaintext of every chunk of ``segments`` in order, reading ahead.

    Each piece is a view into a buffer of ``buffers`` and is valid only until the next
    piece is asked for: its buffer is then reused. At most ``max_segments`` segments and
    about ``max_bytes`` of plaintext (the larger of a segment's stored and plaintext
    bytes) are in flight. Closing the iterator early cancels what was not started.
    """
    reads = fetch_ahead(
        fetcher,
        ((0, segment, what) for segment in segments),
        pool,
        buffers,
        max_bytes=max_bytes,
        max_segments=max_segments,
    )
    try:
        for item in reads:
            yield from item.future.result()
            if item.buffer is not None:
                buffers.give(item.buffer)
    finally:
        reads.close()

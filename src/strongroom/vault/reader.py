"""Reading one recovery point: list its streams, read any one without the others.

Every chunk is checked against its keyed id as it arrives, and a stream's size and keyed
hash are checked at its end; any mismatch raises ``IntegrityError`` instead of handing out
wrong bytes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Final

from strongroom.errors import IntegrityError, NotFoundError
from strongroom.vault.cache import Location
from strongroom.vault.crypto import GenerationKeys
from strongroom.vault.fetch import ChunkFetcher, SegmentBuffers, group_segments, prefetch
from strongroom.vault.format import manifest_name
from strongroom.vault.manifest import LIST_CHUNK_IDS, RecoveryPoint, StreamRecord, parse_chunk_list
from strongroom.vault.read_ahead import StreamPlan

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MIB: Final = 1024 * 1024
LOCATE_BATCH: Final = 1024


@dataclass(frozen=True, slots=True)
class ReaderOptions:
    """Read-ahead bounds: ``threads`` fetching and checking (default: max(4, CPUs)),
    ``prefetch_bytes`` in flight (plaintext, or stored bytes where larger),
    ``segment_bytes`` per ranged get (stored and plaintext)."""

    threads: int | None = None
    prefetch_bytes: int = 32 * MIB
    segment_bytes: int = 8 * MIB


class VaultReader:
    """The streams of one recovery point. Close it (or use ``with``) to free its threads."""

    def __init__(
        self,
        point: RecoveryPoint,
        fetcher: ChunkFetcher,
        keys: GenerationKeys,
        options: ReaderOptions | None = None,
    ) -> None:
        self._point = point
        self._fetcher = fetcher
        self._keys = keys
        self._options = options or ReaderOptions()
        threads = self._options.threads or max(4, os.cpu_count() or 1)
        self._threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chunk-read")
        self._buffers = SegmentBuffers(keep=2)
        self._plan: StreamPlan | None = None

    @property
    def point(self) -> RecoveryPoint:
        """The recovery point being read."""
        return self._point

    def streams(self) -> list[StreamRecord]:
        """Return the point's streams in commit order."""
        return self._point.streams

    def stream(self, name: str) -> StreamRecord:
        """Return the record of stream ``name``; raises ``NotFoundError`` if absent."""
        for record in self._point.manifest.streams:
            if record.name == name:
                return record
        raise NotFoundError(f"recovery point {self._point.id} has no stream {name!r}")

    def chunk_ids(self, record: StreamRecord) -> Iterator[bytes]:
        """Yield the stream's chunk ids in order (see :func:`stream_chunk_ids`)."""
        return stream_chunk_ids(self._fetcher, self._keys.generation, record, self._what(record))

    def blob_names(self) -> set[str]:
        """Return the names of the blobs this point needs: its manifest and every pack that
        holds one of its chunks (chunk lists included).

        Raises ``IntegrityError`` when a chunk cannot be located.
        """
        names = {manifest_name(self._point.id)}
        for record in self._point.streams:
            what = self._what(record)
            list_ids = [bytes.fromhex(list_hex) for list_hex in record.chunk_lists or []]
            if list_ids:
                located = self._fetcher.locate_many(list_ids, self._keys.generation, what)
                names.update(location.pack_name for location in located)
            names.update(location.pack_name for location in self._locations(record, what))
        return names

    def read_ahead(self, names: Sequence[str]) -> None:
        """Say that streams ``names`` will be read next, one after the other and each to
        its end, in this order: their chunks are then fetched ahead across the streams'
        boundaries, not from each stream's start once it is opened.

        Only a plan: reading any other stream, or leaving one of these before its
        recorded size was read, drops it, and reading goes on as without one. Names the
        point does not hold end the plan there (opening them raises as usual).
        """
        self._drop_plan()
        records: list[StreamRecord] = []
        known = {record.name: record for record in self._point.manifest.streams}
        for name in names:
            if name not in known:
                break
            records.append(known[name])
        if records:
            self._plan = StreamPlan(
                records,
                lambda record, what: group_segments(
                    self._locations(record, what), self._options.segment_bytes
                ),
                self._what,
                self._fetcher,
                self._pool,
                self._buffers,
                max_bytes=self._options.prefetch_bytes,
                max_segments=2 * self._threads,
            )

    def _drop_plan(self) -> None:
        if self._plan is not None:
            self._plan.close()
            self._plan = None

    def list_blob_names(self) -> set[str]:
        """Return the blobs :meth:`blob_names` must read before it can name the rest: the
        manifest and the packs holding the point's chunk lists (nothing is read here).

        Raises ``IntegrityError`` when a chunk list cannot be located.
        """
        names = {manifest_name(self._point.id)}
        for record in self._point.streams:
            list_ids = [bytes.fromhex(list_hex) for list_hex in record.chunk_lists or []]
            if list_ids:
                located = self._fetcher.locate_many(
                    list_ids, self._keys.generation, self._what(record)
                )
                names.update(location.pack_name for location in located)
        return names

    def iter_stream(self, name: str) -> Generator[bytes, None, None]:
        """Yield stream ``name`` as checked pieces (one per chunk), reading ahead.

        Raises ``NotFoundError`` for an unknown stream and ``IntegrityError`` when data is
        missing or damaged (at the latest after the last piece: size and stream hash).
        """
        pieces = self.iter_views(name)
        try:
            for piece in pieces:
                yield bytes(piece)
        finally:
            pieces.close()

    def iter_views(self, name: str) -> Generator[memoryview, None, None]:
        """Yield stream ``name`` as checked pieces, like :meth:`iter_stream`, without a
        copy: each piece is a view that stays valid only until the next one is asked
        for (its memory is then reused). Write or copy it before asking again.
        """
        record = self.stream(name)
        what = self._what(record)
        hasher = self._keys.stream_hasher()
        size = 0
        pieces = self._planned_pieces(name)
        if pieces is None:
            pieces = prefetch(
                self._fetcher,
                group_segments(self._locations(record, what), self._options.segment_bytes),
                self._pool,
                self._buffers,
                max_bytes=self._options.prefetch_bytes,
                max_segments=2 * self._threads,
                what=what,
            )
        try:
            for piece in pieces:
                hasher.update(piece)
                size += len(piece)
                if size > record.size:
                    raise IntegrityError(f"{what}: longer than its recorded {record.size} bytes")
                yield piece
        finally:
            pieces.close()
        if size != record.size or hasher.hexdigest() != record.hash:
            raise IntegrityError(f"{what}: the restored stream does not match its recorded hash")

    def _planned_pieces(self, name: str) -> Generator[memoryview, None, None] | None:
        """The pieces of stream ``name`` from the plan, if it is the plan's next stream
        (else the plan is dropped and None returned)."""
        plan = self._plan
        if plan is not None and plan.is_next(name):
            return plan.pieces()
        self._drop_plan()
        return None

    def copy_stream(self, name: str, out: BinaryIO) -> int:
        """Write stream ``name`` to ``out`` as it is checked; return the bytes written.

        Raises as :meth:`iter_stream` does; ``out`` then holds a prefix of the stream
        (or, after the last piece, all of it with a hash mismatch): write to a temporary
        place and keep it only when this returns.
        """
        written = 0
        for piece in self.iter_views(name):
            out.write(piece)
            written += len(piece)
        return written

    def _locations(self, record: StreamRecord, what: str) -> Iterator[Location]:
        """Yield where the stream's chunks are, looked up in batches."""
        chunk_ids = self.chunk_ids(record)
        while batch := list(islice(chunk_ids, LOCATE_BATCH)):
            yield from self._fetcher.locate_many(batch, self._keys.generation, what)

    def open_stream(self, name: str) -> StreamReader:
        """Return stream ``name`` as a readable binary file object (see :meth:`iter_stream`)."""
        return StreamReader(self.iter_views(name))

    def read_stream(self, name: str) -> bytes:
        """Return all of stream ``name`` (for small streams; see :meth:`iter_stream`)."""
        return b"".join(self.iter_stream(name))

    def close(self) -> None:
        """Stop the read-ahead threads."""
        self._drop_plan()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> VaultReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _what(self, record: StreamRecord) -> str:
        return f"recovery point {self._point.id} stream {record.name!r}"


def stream_chunk_ids(
    fetcher: ChunkFetcher, generation: int, record: StreamRecord, what: str
) -> Iterator[bytes]:
    """Yield a stream's chunk ids in order, reading its list chunks as needed.

    Raises ``IntegrityError`` naming ``what`` when a list chunk is missing or damaged or
    the lists do not hold ``chunk_count`` ids.
    """
    if record.chunks is not None:
        for chunk_hex in record.chunks:
            yield bytes.fromhex(chunk_hex)
        return
    count = 0
    lists = record.chunk_lists or []
    for number, list_hex in enumerate(lists):
        plaintext = fetcher.read_chunk(bytes.fromhex(list_hex), generation, f"{what} (chunk list)")
        ids = parse_chunk_list(plaintext, what)
        if number < len(lists) - 1 and len(ids) != LIST_CHUNK_IDS:
            raise IntegrityError(f"{what}: a chunk list is short")
        count += len(ids)
        if count > record.chunk_count:
            raise IntegrityError(f"{what}: the chunk lists hold more chunks than recorded")
        yield from ids
    if count != record.chunk_count:
        raise IntegrityError(
            f"{what}: the chunk lists hold {count} chunks, not {record.chunk_count}"
        )


class StreamReader(io.RawIOBase):
    """A readable file object over checked stream pieces."""

    def __init__(
        self, pieces: Generator[bytes, None, None] | Generator[memoryview, None, None]
    ) -> None:
        """``pieces``: each piece is read whole before the next is asked for, so views
        valid only until then (:meth:`VaultReader.iter_views`) are fine."""
        super().__init__()
        self._pieces = pieces
        self._current = memoryview(b"")

    def readable(self) -> bool:
        """True: this is a readable stream."""
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Fill ``buffer`` with the next bytes; 0 at the end. Raises ``IntegrityError``."""
        target = memoryview(buffer).cast("B")
        while not self._current:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._current = memoryview(piece)
        count = min(len(target), len(self._current))
        target[:count] = self._current[:count]
        self._current = self._current[count:]
        return count

    def close(self) -> None:
        """Stop reading ahead."""
        if not self.closed:
            self._pieces.close()
        super().close()

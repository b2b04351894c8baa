"""The packer: places prepared chunks into packs, seals and uploads them, writes the index.

Shared by every stream of one writer. A placed chunk is encrypted into the open pack at
once (its payload is then dropped). Back-pressure: at most ``uploads`` packs are being
sealed or uploaded at once; placing a chunk that closes a pack waits for a slot. Pack
buffers are reused once their upload is done, so a writer holds ``uploads + 1`` of them.
Index fragments are written only for packs whose upload finished, so every chunk an
uploaded fragment lists exists.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from strongroom.errors import StrongroomError
from strongroom.logs import get_logger
from strongroom.storage.base import BlobStore
from strongroom.vault.cache import CacheSession, IndexCache
from strongroom.vault.crypto import GenerationKeys, compress
from strongroom.vault.format import FLAG_ZSTD, index_name
from strongroom.vault.index import FRAGMENT_MAX_CHUNKS, IndexedPack, seal_fragment
from strongroom.vault.pack import MAX_PACK_CHUNKS, PackBuilder

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A chunk after the worker's part: its id and either its stored length (the vault or
    this writer has it) or its payload."""

    chunk_id: bytes
    data: memoryview
    stored: int | None
    payload: bytes | memoryview | None
    """The zstd frame, or ``data`` itself when it does not compress; None if stored."""
    flags: int


@dataclass(slots=True)
class PackerStats:
    """What one writer stored and referenced."""

    new_stored_size: int = 0
    new_chunk_count: int = 0
    stored_size: int = 0
    chunk_count: int = 0


class Packer:
    """Places chunks into packs of one generation and uploads them (thread-safe)."""

    def __init__(
        self,
        *,
        store: BlobStore,
        cache: IndexCache,
        session: CacheSession,
        keys: GenerationKeys,
        pack_target_size: int,
        compression_level: int | None,
        uploads: int,
    ) -> None:
        self._store = store
        self._cache = cache
        self._session = session
        self._keys = keys
        self._target = pack_target_size
        self._level = compression_level
        self._uploads = max(1, uploads)
        self._lock = threading.RLock()
        self._builder: PackBuilder | None = None
        self._spare: io.BytesIO | None = None
        self._pool = ThreadPoolExecutor(max_workers=self._uploads, thread_name_prefix="pack-upload")
        self._in_flight: deque[Future[tuple[IndexedPack, str, io.BytesIO]]] = deque()
        self._blocks: list[bytes] = []
        self._fragment_packs: list[IndexedPack] = []
        self._fragment_chunks = 0
        self._unindexed: list[str] = []
        self.fragments: list[str] = []
        self.stats = PackerStats()
        self.failure: BaseException | None = None
        """The first upload or index error; the writer fails with it."""

    def prepare(self, data: memoryview, chunk_id: bytes | None = None) -> Prepared:
        """Hash (unless ``chunk_id`` is given) and, unless the index has the chunk,
        compress it: the worker's part. The payload never refers to ``data``."""
        if chunk_id is None:
            chunk_id = self._keys.chunk_id(data)
        stored = self._session.stored_length(chunk_id)
        if stored is not None:
            return Prepared(chunk_id, data, stored, None, 0)
        payload, flags = self._compress(data)
        return Prepared(chunk_id, data, None, payload, flags)

    def _compress(self, data: memoryview) -> tuple[bytes | memoryview, int]:
        if self._level is not None and data:
            frame = compress(data, self._level)
            if len(frame) < len(data):
                return frame, FLAG_ZSTD
        return data, 0

    def place(self, prepared: Prepared) -> None:
        """Store the chunk unless this vault or writer already has it; count the reference.

        May block while packs upload (back-pressure); raises upload errors.
        """
        with self._lock:
            stored = prepared.stored
            if stored is None:
                stored = self._session.stored_length(prepared.chunk_id)
            if stored is None:
                payload, flags = prepared.payload, prepared.flags
                if payload is None:
                    payload, flags = self._compress(prepared.data)
                builder = self._builder
                if builder is None:
                    # room for the target, one more large chunk and the header
                    capacity = self._target + self._target // 8 + (1 << 16)
                    builder = self._builder = PackBuilder(self._keys, self._spare, capacity)
                    self._spare = None
                stored = builder.add(prepared.chunk_id, payload, flags, len(prepared.data))
                del payload
                self._session.add_pending(prepared.chunk_id, stored)
                self.stats.new_chunk_count += 1
                if builder.payload_bytes >= self._target or len(builder) >= MAX_PACK_CHUNKS:
                    self._builder = None
                    self._submit_pack(builder)
            self._count_reference(prepared.chunk_id, stored)

    def reference_staged(self) -> None:
        """Reference the chunks staged in the session (a reused stream's)."""
        with self._lock:
            count, stored = self._session.take_staged()
            self.stats.chunk_count += count
            self.stats.stored_size += stored

    def _count_reference(self, chunk_id: bytes, stored: int) -> None:
        if self._session.reference(chunk_id):
            self.stats.stored_size += stored
            self.stats.chunk_count += 1

    def flush(self) -> None:
        """Upload the open pack, wait for every upload and write the last index fragment."""
        with self._lock:
            builder, self._builder = self._builder, None
            if builder is not None and len(builder):
                self._submit_pack(builder)
            while self._in_flight:
                self._collect_oldest()
            if self._blocks:
                self._write_fragment()

    def abort(self) -> None:
        """Stop: wait for running uploads, then delete packs no index fragment lists.

        Packs an uploaded fragment lists stay (another writer may already use them); a
        future GC removes them. Deletion is best effort.
        """
        with self._lock:
            for future in self._in_flight:
                future.cancel()
            while self._in_flight:
                future = self._in_flight.popleft()
                if future.cancelled():
                    continue
                try:
                    self._unindexed.append(future.result()[1])
                except StrongroomError as exc:
                    _log.debug("pack upload failed during abort: %s", exc)
            for name in self._unindexed:
                try:
                    self._store.delete(name)
                except StrongroomError as exc:
                    _log.warning("could not remove the unused pack %s: %s", name, exc)
            self._unindexed.clear()
            self.close()

    def close(self) -> None:
        """Release the upload threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit_pack(self, builder: PackBuilder) -> None:
        while self._in_flight and (
            len(self._in_flight) >= self._uploads or self._in_flight[0].done()
        ):
            self._collect_oldest()
        self._in_flight.append(self._pool.submit(self._seal_and_put, builder))

    def _seal_and_put(self, builder: PackBuilder) -> tuple[IndexedPack, str, io.BytesIO]:
        sealed = builder.seal()
        self._store.put(sealed.name, sealed.data)
        _log.debug(
            "uploaded %s (%d chunks, %d bytes)", sealed.name, len(sealed.entries), len(sealed.data)
        )
        pack = IndexedPack(
            sealed.digest, sealed.salt, sealed.generation, len(sealed.data), sealed.entries
        )
        return pack, sealed.name, builder.buffer

    def _collect_oldest(self) -> None:
        try:
            pack, name, buffer = self._in_flight.popleft().result()
        except BaseException as exc:
            self.failure = self.failure or exc
            raise
        self._spare = buffer  # the pack's bytes are no longer referenced: reuse its buffer
        self._unindexed.append(name)
        self.stats.new_stored_size += pack.size
        self._blocks.append(pack.to_bytes())
        self._fragment_packs.append(pack)
        self._fragment_chunks += len(pack.entries)
        if self._fragment_chunks >= FRAGMENT_MAX_CHUNKS:
            self._write_fragment()

    def _write_fragment(self) -> None:
        blob = seal_fragment(self._blocks, self._keys.generation, self._keys.data_key)
        name = index_name(hashlib.sha256(blob).hexdigest())
        try:
            self._store.put(name, blob)
        except BaseException as exc:
            self.failure = self.failure or exc
            raise
        self._cache.add_fragment(name, self._fragment_packs)
        self.fragments.append(name)
        self._blocks, self._fragment_packs, self._fragment_chunks = [], [], 0
        self._unindexed.clear()

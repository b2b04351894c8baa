"""Writing one recovery point: streams in, one manifest out (the single commit point).

Usage::

    with vault.writer() as writer:
        with writer.open_stream("base.sql") as stream:
            stream.write(b"...")
        writer.add_stream("wal.tar", open("wal.tar", "rb"))
        point_id = writer.commit(metadata={"lsn": "0/16B3748"}, tags={"plan": "daily"})

Nothing is visible until :meth:`VaultWriter.commit` puts the manifest; a crash or an
:meth:`VaultWriter.abort` before that leaves the previous state plus garbage packs.

A stream stored before can be put into the point again without its bytes:
``writer.stream_reference(name)`` after it closed, ``writer.reuse(name, reference)`` in a
later backup (see :mod:`strongroom.vault.reuse`).

A writer made by :meth:`Vault.writer` holds a shared vault lease (docs/vault-format.md §13)
from its first stream (or its commit) to its end, so garbage collection cannot run while
it deduplicates against the index or has packs no manifest references yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, BinaryIO, Final, Literal

from pydantic import ValidationError

from strongroom.errors import ConfigError, ConflictError
from strongroom.logs import get_logger
from strongroom.storage.base import BlobStore
from strongroom.vault.cache import IndexCache
from strongroom.vault.chunker import StreamChunker, window_size
from strongroom.vault.config import VaultConfig
from strongroom.vault.crypto import GenerationKeys
from strongroom.vault.fetch import ChunkFetcher
from strongroom.vault.format import manifest_name
from strongroom.vault.leases import HeldLease
from strongroom.vault.manifest import (
    MAX_STREAM_NAME_BYTES,
    PointStats,
    RecoveryPointId,
    StreamRecord,
    build_manifest,
    encode_manifest,
)
from strongroom.vault.packer import Packer
from strongroom.vault.reader import stream_chunk_ids
from strongroom.vault.replay import ChunkReplay
from strongroom.vault.reuse import StreamReuse, make_reference, parse_reference
from strongroom.vault.stream_writer import Readable, StreamWriter, WindowPool

READ_SIZE: Final = 1024 * 1024
_log = get_logger(__name__)
WriterState = Literal["open", "committed", "aborted", "failed"]


@dataclass(frozen=True, slots=True)
class WriterOptions:
    """How a writer uses the machine (none of this changes what is stored).

    ``workers``: threads hashing and compressing chunks (default: CPU count);
    ``uploads``: packs sealed and uploaded at once; ``in_flight``: chunks queued per
    stream (default ``2 * workers + 2``); ``compression_level``: None takes the vault's.
    """

    workers: int | None = None
    uploads: int = 2
    in_flight: int | None = None
    compression_level: int | None = None


class VaultWriter:
    """Collects named streams into one recovery point. Streams may be written from
    different threads at once (each stream from one thread)."""

    def __init__(
        self,
        *,
        store: BlobStore,
        cache: IndexCache,
        keys: GenerationKeys,
        config: VaultConfig,
        options: WriterOptions | None = None,
        acquire_lease: Callable[[], HeldLease] | None = None,
        fetcher: ChunkFetcher | None = None,
    ) -> None:
        """``acquire_lease`` takes the writer's shared vault lease (and syncs the index
        under it); it is called once, when the first stream opens or at commit.
        ``fetcher`` reads chunk lists of earlier streams (to replay their chunk
        boundaries and to reuse long streams); without it neither happens."""
        options = options or WriterOptions()
        self._store = store
        self._cache = cache
        self._keys = keys
        self._config = config
        self._fetcher = fetcher
        workers = options.workers or os.cpu_count() or 2
        self._in_flight = options.in_flight or 2 * workers + 2
        level: int | None = options.compression_level or config.compression.level
        if config.compression.algorithm == "none":
            level = None
        if level is not None and not 1 <= level <= 22:
            raise ConfigError(f"zstd level {level} is outside 1..22")
        self._session = cache.session()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunk")
        # One thread, tasks in order: each stream's hash is fed window by window.
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-hash")
        self._windows = WindowPool(window_size(config.chunker.max_size))
        self._packer = Packer(
            store=store,
            cache=cache,
            session=self._session,
            keys=keys,
            pack_target_size=config.pack_target_size,
            compression_level=level,
            uploads=options.uploads,
        )
        self._lock = threading.Lock()
        self._reuse_lock = threading.Lock()
        self._state: WriterState = "open"
        self._failure: BaseException | None = None
        self._open: set[str] = set()
        self._records: dict[str, StreamRecord] = {}
        self._abandoned: list[str] = []
        self._acquire_lease = acquire_lease
        self._held: HeldLease | None = None

    @property
    def state(self) -> WriterState:
        """``open``, ``committed``, ``aborted`` or ``failed`` (an error happened: abort)."""
        return self._state

    @property
    def key_generation(self) -> int:
        """The data-key generation this writer encrypts with."""
        return self._keys.generation

    def open_stream(self, name: str) -> StreamWriter:
        """Start stream ``name``; returns a writable file-like object to write and close.

        Raises ``ConfigError`` if the name is empty, too long or already used.
        """
        self._check()
        self._check_name(name)
        self._ensure_lease()
        self._reserve(name)
        chunker = self._config.chunker
        return StreamWriter(
            name=name,
            keys=self._keys,
            chunker=StreamChunker(chunker.min_size, chunker.avg_size, chunker.max_size),
            packer=self._packer,
            pool=self._pool,
            hashing=self._hashing,
            in_flight=self._in_flight,
            on_close=self._stream_closed,
            check=self._check,
            replay=self._replay(name),
            windows=self._windows,
        )

    def add_stream(self, name: str, source: BinaryIO | Iterable[bytes]) -> StreamRecord:
        """Write a whole stream from a binary file object or an iterable of bytes.

        Returns its record. Raises what reading the source or writing raises; the stream
        is then abandoned.
        """
        with self.open_stream(name) as stream:
            if isinstance(source, Readable):
                stream.write_from(source)
            elif hasattr(source, "read"):
                while piece := source.read(READ_SIZE):
                    stream.write(piece)
            else:
                for piece in source:
                    stream.write(piece)
        return self._records[name]

    def stream_record(self, name: str) -> StreamRecord | None:
        """Return the record of the closed stream ``name``, or None if none was recorded."""
        with self._lock:
            return self._records.get(name)

    def stream_reference(self, name: str) -> dict[str, Any] | None:
        """Return a reference to the content of the closed stream ``name`` (a JSON
        object to keep, e.g. in a files cache), or None if no such stream was recorded.

        :meth:`reuse` in a later writer of this vault turns it back into a stream.
        """
        record = self._records.get(name)
        if record is None:
            return None
        return make_reference(self._keys, self._config.vault_id, record)

    def reuse(self, name: str, previous_reference: Mapping[str, Any]) -> bool:
        """Add stream ``name`` with the content ``previous_reference`` names, without its
        bytes. Returns False (and adds nothing) when that is impossible: the reference
        is altered, of another vault or key generation, or a chunk of it is no longer
        in the vault (collected since).

        Raises ``ConfigError`` for an invalid or used name, and writer errors.
        """
        self._check()
        self._check_name(name)
        record = parse_reference(previous_reference, self._keys, self._config.vault_id, name)
        if isinstance(record, str):
            _log.info("cannot reuse a stream for %r: %s", name, record)
            return False
        self._ensure_lease()
        self._reserve(name)
        accepted = False
        try:
            with self._reuse_lock:
                reason = StreamReuse(self._session, self._fetcher, self._keys).stage(record)
                if reason is None:
                    self._packer.reference_staged()
                    accepted = True
                else:
                    self._session.clear_staged()
                    _log.info("cannot reuse a stream for %r: %s", name, reason)
        finally:
            with self._lock:
                self._open.discard(name)
                if accepted:
                    self._records[name] = record
        return accepted

    def commit(
        self, metadata: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None
    ) -> RecoveryPointId:
        """Make the recovery point: finish uploads and the index, then put the manifest.

        Returns the point's id. Raises ``ConfigError`` while streams are open or after one
        was abandoned, and storage errors (e.g. ``InsufficientStorageError``); on any
        error the writer is aborted and no recovery point exists.
        """
        self._check()
        self._ensure_lease()
        with self._lock:
            if self._open:
                raise ConfigError(f"close stream(s) {sorted(self._open)} before commit")
            if self._abandoned:
                raise ConfigError(
                    f"stream(s) {self._abandoned} were abandoned; abort this recovery point"
                )
        try:
            self._packer.flush()
            stats = self._packer.stats
            records = list(self._records.values())
            manifest = build_manifest(
                created=datetime.now(UTC),
                key_generation=self._keys.generation,
                tags=dict(tags or {}),
                metadata=dict(metadata or {}),
                streams=records,
                stats=PointStats(
                    logical_size=sum(record.size for record in records),
                    stored_size=stats.stored_size,
                    new_stored_size=stats.new_stored_size,
                    chunk_count=stats.chunk_count,
                    new_chunk_count=stats.new_chunk_count,
                ),
            )
            blob = encode_manifest(manifest, self._keys.data_key)
            digest = hashlib.sha256(blob).hexdigest()
            if self._held is not None:
                # Renew the lease and check that no exclusive lease showed up, last: had
                # the lease gone stale and been removed, or had a GC (of a strongroom that
                # ignores leases) started, it may have deleted chunks this point uses.
                self._held.confirm()
            self._store.put(manifest_name(digest), blob)
        except BaseException as exc:
            self._fail(exc)
            self.abort()
            raise
        self._state = "committed"
        self._release()
        self._remember(records)
        _log.info(
            "committed recovery point %s: %d streams, %d bytes, %d new bytes stored",
            digest,
            len(records),
            manifest.stats.logical_size,
            manifest.stats.new_stored_size,
        )
        return RecoveryPointId(digest)

    def abort(self) -> None:
        """Give up: no recovery point; unindexed packs are removed (best effort).

        Idempotent; does nothing after a commit.
        """
        if self._state in ("committed", "aborted"):
            return
        if self._state == "open":
            self._state = "aborted"
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._hashing.shutdown(wait=True, cancel_futures=True)
        self._packer.abort()
        self._session.close()
        if self._held is not None:
            self._held.release()
        if self._state == "failed":
            self._state = "aborted"

    def __enter__(self) -> VaultWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state not in ("committed", "aborted"):
            if exc_type is None:
                _log.warning("vault writer left without commit; aborting")
            self.abort()

    def _check_name(self, name: str) -> None:
        try:
            encoded = name.encode("utf-8")
        except UnicodeEncodeError:
            encoded = b""
        if not encoded or len(encoded) > MAX_STREAM_NAME_BYTES or "\x00" in name:
            raise ConfigError(
                f"invalid stream name {name!r}: 1..4096 bytes of UTF-8 without NUL are allowed"
            )

    def _reserve(self, name: str) -> None:
        with self._lock:
            if name in self._open or name in self._records or name in self._abandoned:
                raise ConfigError(f"stream {name!r} is already part of this recovery point")
            self._open.add(name)

    def _replay(self, name: str) -> ChunkReplay | None:
        """Return the chunk boundaries of the last committed stream of this name, if
        this client wrote one (a hint in the index cache), to replay."""
        if self._fetcher is None:
            return None
        hint = self._cache.stream_hint(self._keys.stream_hint(name), self._keys.generation)
        if hint is None:
            return None
        try:
            record = StreamRecord.model_validate(
                {"name": name, "hash": "0" * 64, **json.loads(hint)}
            )
        except (ValueError, ValidationError):
            return None
        chunk_ids = stream_chunk_ids(
            self._fetcher, self._keys.generation, record, f"the previous stream {name!r}"
        )
        return ChunkReplay(chunk_ids, self._session.raw_lengths)

    def _remember(self, records: list[StreamRecord]) -> None:
        """Keep the chunk lists of long streams as hints for their next backup."""
        for record in records:
            if record.chunk_lists:
                hint = {
                    "size": record.size,
                    "chunk_count": record.chunk_count,
                    "chunks": None,
                    "chunk_lists": record.chunk_lists,
                }
                self._cache.remember_stream(
                    self._keys.stream_hint(record.name), self._keys.generation, json.dumps(hint)
                )

    def _ensure_lease(self) -> None:
        """Take the shared vault lease once; a failure to take it fails the writer."""
        if self._acquire_lease is None or self._held is not None:
            return
        with self._lock:
            if self._held is not None:
                return
            try:
                held = self._acquire_lease()
            except BaseException as exc:
                self._fail(exc)
                raise
            self._held = held
            # A writer dropped without commit or abort must not keep its lease alive.
            weakref.finalize(self, held.release)
        self._check()

    def _check(self) -> None:
        if self._held is not None and self._held.lost:
            try:
                self._held.check()
            except ConflictError as exc:
                self._fail(exc)
        if self._packer.failure is not None:
            self._fail(self._packer.failure)
        if self._state == "failed" and self._failure is not None:
            raise self._failure
        if self._state != "open":
            raise ConfigError(f"this vault writer is {self._state}")

    def _fail(self, exc: BaseException) -> None:
        if self._state == "open":
            self._failure = exc
            self._state = "failed"

    def _stream_closed(self, stream: StreamWriter, record: StreamRecord | None) -> None:
        with self._lock:
            self._open.discard(stream.name)
            if record is None:
                self._abandoned.append(stream.name)
            else:
                self._records[stream.name] = record

    def _release(self) -> None:
        self._pool.shutdown(wait=True)
        self._hashing.shutdown(wait=True)
        self._packer.close()
        self._session.close()
        if self._held is not None:
            self._held.release()

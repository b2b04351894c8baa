"""Where a files backup puts file content: packs of small files, own streams for large ones.

Content streams are named ``content/000001``, ``content/000002`` … in walk order.

* A file of :data:`LARGE_FILE` bytes or more gets a stream of its own, so restoring it
  reads nothing else.
* Smaller files are concatenated into *packs*: 100 000 files of 4 KiB make about 100 pack
  streams rather than 100 000 tiny ones, which keeps the vault's manifest and chunk count
  small (its content-defined chunker never sees a file smaller than its minimum chunk).
  Restoring one small file reads at most the start of one pack (< :data:`PACK_MAX`).
* A pack ends after a file whose path hashes to a cut point once it holds
  :data:`PACK_MIN` bytes, or when it reaches :data:`PACK_MAX` bytes or
  :data:`PACK_MAX_FILES` files. Because the cut depends on names rather than on
  running sizes, one changed file changes one pack; the packs after it come out the same,
  which is what lets the cache reuse them (see :mod:`strongroom.sources.files.cache`).

Each file is read once with ``O_NOFOLLOW``, up to the size the walk saw (so a file that
keeps growing cannot hold the backup forever); if it grew past that, if its size or mtime
differ between the walk's stat and the end of the read, or if the inode was replaced, it is
listed as changed during the backup, and its bytes as read are kept. A file that vanishes or
cannot be read is left out of the index with a note. A file's extended attributes are read
after its content (the walk leaves them out); those of a file in a reused stream come from
the cache, which keeps them only while the file's ctime, which any change to them moves,
is the same.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from strongroom.sources.base import SourceContext, StreamSink
from strongroom.sources.files.cache import FileCache, Placed, ReusingSink, StoredFile
from strongroom.sources.files.walk import (
    Hardlinks,
    WalkItem,
    XattrReader,
    encode_xattrs,
    record_of,
)

LARGE_FILE: Final = 1024 * 1024
PACK_MIN: Final = 4 * 1024 * 1024
PACK_MAX: Final = 16 * 1024 * 1024
PACK_MAX_FILES: Final = 4096
BLOCK_SIZE: Final = 1024 * 1024
_MAX_WAITING_RECORDS: Final = 10_000

Record = dict[str, object]


@dataclass(slots=True)
class _Read:
    sha256: str
    length: int
    status: os.stat_result
    changed: bool


class _ReadFailed(Exception):
    def __init__(self, written: int, reason: str) -> None:
        super().__init__(reason)
        self.written = written
        self.reason = reason


@dataclass(slots=True)
class _Slot:
    """A record waiting for the current pack: a ready record, a file or a hard link."""

    item: WalkItem
    record: Record | None = None
    link_to: str | None = None


class ContentWriter:
    """Takes walk items in order, writes content streams, emits index records in order.

    ``emit`` receives each index record; ``skip`` receives (path, reason) for entries left
    out; ``xattrs`` reads the extended attributes of files read (share the walk's). After :meth:`finish`, ``changed`` lists files that changed while read.
    """

    def __init__(
        self,
        sink: StreamSink,
        context: SourceContext,
        emit: Callable[[Record], None],
        skip: Callable[[str, str], None],
        *,
        cache: FileCache | None = None,
        follow_symlinks: bool = False,
        xattrs: XattrReader | None = None,
    ) -> None:
        self._sink = sink
        self._context = context
        self._emit = emit
        self._skip = skip
        self._reusing = sink if cache is not None and isinstance(sink, ReusingSink) else None
        self._cache = cache if self._reusing is not None else None
        self._follow = follow_symlinks
        self._xattrs = xattrs or XattrReader(skip)
        self._hardlinks = Hardlinks()
        self._pack: list[WalkItem] = []
        self._pack_bytes = 0
        self._waiting: list[_Slot] = []
        self._failed: set[str] = set()
        self._stream_count = 0
        self.changed: list[str] = []
        self.reused_streams = 0
        self.bytes_read = 0

    def add(self, item: WalkItem) -> None:
        """Take the next walk item."""
        self._context.check_cancelled()
        if item.kind != "file":
            self._wait(_Slot(item, record=record_of(item)))
            return
        status = item.stat
        if status.st_nlink > 1:  # checked here first: a call less for most files
            first = self._hardlinks.first_path(item)
            if first is not None:
                self._wait(_Slot(item, link_to=first))
                return
            self._hardlinks.remember(item)
        size = status.st_size
        if size >= LARGE_FILE:
            self._flush()
            name = self._next_name()
            placed = self._write_single(name, item)
            if placed is not None:
                self._emit_file(item, name, placed)
            return
        self._pack.append(item)
        self._waiting.append(_Slot(item))
        self._pack_bytes += size
        if self._pack_full(item):
            self._flush()

    def finish(self) -> None:
        """Write the last pack and emit every record still waiting."""
        self._flush()

    def _pack_full(self, last: WalkItem) -> bool:
        if self._pack_bytes >= PACK_MAX or len(self._pack) >= PACK_MAX_FILES:
            return True
        if self._pack_bytes < PACK_MIN:
            return False
        return hashlib.sha256(os.fsencode(last.path)).digest()[0] & 0x0F == 0

    def _wait(self, slot: _Slot) -> None:
        if self._pack:
            self._waiting.append(slot)
            if len(self._waiting) > _MAX_WAITING_RECORDS:
                self._flush()
        else:
            self._release(slot, "", {})

    def _flush(self) -> None:
        name, placed = "", {}
        if self._pack:
            name = self._next_name()
            placed = self._write_pack(name, self._pack)
        for slot in self._waiting:
            self._release(slot, name, placed)
        self._pack, self._pack_bytes, self._waiting = [], 0, []

    def _release(self, slot: _Slot, name: str, placed: dict[str, Placed]) -> None:
        """Emit the record of ``slot``; files find their bytes in stream ``name``."""
        item = slot.item
        if slot.record is not None:
            self._emit(slot.record)
        elif slot.link_to is not None:
            if slot.link_to in self._failed:
                self._skip(item.path, f"hard link to {slot.link_to}, which could not be read")
            else:
                self._emit(record_of(item, link_to=slot.link_to))
        else:
            found = placed.get(item.path)
            if found is not None:  # else it could not be read, and was skipped
                self._emit_file(item, name, found)

    def _emit_file(self, item: WalkItem, name: str, placed: Placed) -> None:
        self._emit(
            record_of(
                item,
                size=placed.length,
                sha256=placed.sha256,
                stream=name,
                offset=placed.offset,
                xattrs=placed.xattrs,
            )
        )

    def _next_name(self) -> str:
        self._stream_count += 1
        return f"content/{self._stream_count:06d}"

    def _fail(self, item: WalkItem, reason: str) -> None:
        self._failed.add(item.path)
        self._hardlinks.forget(item)
        self._skip(item.path, reason)

    def _write_single(self, name: str, item: WalkItem) -> Placed | None:
        reused = self._reuse(name, [item])
        if reused is not None:
            return reused[item.path]
        try:
            with self._sink.open_stream(name) as stream:
                read = self._read(item, stream.write)
        except _ReadFailed as failure:
            self._fail(item, failure.reason)
            return None
        placed = Placed(read.sha256, 0, read.length, self._read_xattrs(item))
        self._remember(name, [(item, read, placed)], read.length)
        return placed

    def _write_pack(self, name: str, items: list[WalkItem]) -> dict[str, Placed]:
        reused = self._reuse(name, items)
        if reused is not None:
            return reused
        done: list[tuple[WalkItem, _Read, Placed]] = []
        offset = 0
        with self._sink.open_stream(name) as stream:
            for item in items:
                try:
                    read = self._read(item, stream.write)
                except _ReadFailed as failure:
                    offset += failure.written
                    self._fail(item, failure.reason)
                    continue
                placed = Placed(read.sha256, offset, read.length, self._read_xattrs(item))
                done.append((item, read, placed))
                offset += read.length
        self._remember(name, done, offset)
        return {item.path: placed for item, _read, placed in done}

    def _read_xattrs(self, item: WalkItem) -> dict[str, str] | None:
        """Return the xattrs of a file just read (the walk's, if it read them)."""
        if item.xattrs is not None:
            return encode_xattrs(item.xattrs)
        status = item.stat
        xattrs = self._xattrs.read(item.path, item.absolute, status.st_dev, follow=self._follow)
        return encode_xattrs(xattrs)

    def _remember(
        self, name: str, done: list[tuple[WalkItem, _Read, Placed]], stream_length: int
    ) -> None:
        if self._reusing is None or self._cache is None:
            return
        reference = self._reusing.stream_reference(name)
        if reference is None:
            return
        self._cache.store(
            reference,
            stream_length,
            (
                StoredFile(item.absolute, read.status, placed)
                for item, read, placed in done
                if not read.changed
            ),
        )

    def _reuse(self, name: str, items: list[WalkItem]) -> dict[str, Placed] | None:
        """Re-emit stream ``name`` from the previous backup if it would come out the same."""
        if self._reusing is None or self._cache is None:
            return None
        cached = self._cache.stream_of(items)
        if cached is None or not self._reusing.reuse(name, cached.reference):
            return None
        self._cache.keep(cached, self._reusing.stream_reference(name) or cached.reference)
        self.reused_streams += 1
        return dict(zip([item.path for item in items], cached.files, strict=True))

    def _read(self, item: WalkItem, write: Callable[[bytes], object]) -> _Read:
        """Copy one file into ``write``; raise ``_ReadFailed`` if it cannot be read."""
        flags = os.O_RDONLY | os.O_CLOEXEC | (0 if self._follow else os.O_NOFOLLOW)
        try:
            try:
                descriptor = os.open(item.absolute, flags | os.O_NOATIME)
            except PermissionError:  # O_NOATIME needs ownership or CAP_FOWNER
                descriptor = os.open(item.absolute, flags)
        except FileNotFoundError:
            raise _ReadFailed(0, "vanished before it was read") from None
        except OSError as exc:
            raise _ReadFailed(0, f"cannot open: {exc.strerror}") from None
        digest, written, walked = hashlib.sha256(), 0, item.stat
        try:
            before = os.fstat(descriptor)
            # At most the size the walk saw, so a file that keeps growing still ends.
            while written < walked.st_size:
                self._context.check_cancelled()
                block = self._read_block(
                    descriptor, min(BLOCK_SIZE, walked.st_size - written), written
                )
                if not block:
                    break
                write(block)
                digest.update(block)
                written += len(block)
                self.bytes_read += len(block)
                self._context.progress(len(block))
            grew = bool(self._read_block(descriptor, 1, written))
            after = os.fstat(descriptor)
        finally:
            os.close(descriptor)
        changed = (
            grew
            or (before.st_dev, before.st_ino) != (walked.st_dev, walked.st_ino)
            or after.st_size != walked.st_size
            or after.st_mtime_ns != walked.st_mtime_ns
            or written != walked.st_size
        )
        if changed:
            self.changed.append(item.path)
        return _Read(digest.hexdigest(), written, after, changed)

    @staticmethod
    def _read_block(descriptor: int, size: int, written: int) -> bytes:
        try:
            return os.read(descriptor, size)
        except OSError as exc:
            raise _ReadFailed(written, f"read error: {exc.strerror}") from None

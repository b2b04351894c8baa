"""Low-level helpers of a files restore: folder handles that never follow a symlink, and a
cursor that reads byte ranges out of content streams.

Every folder below a restore's anchor is opened relative to its parent's descriptor with
``O_NOFOLLOW | O_DIRECTORY``, so no symlink, whether recorded in the index, created by the
restore or already present in the target, can redirect a write outside the anchor; this
also holds against a concurrent change of the target between check and use.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Final

from strongroom.errors import ConflictError
from strongroom.sources.base import ReadableStream, StreamReader

BLOCK_SIZE: Final = 1024 * 1024
_DIRECTORY_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_child(parent: int, name: str, shown: str, *, create: bool) -> int:
    """Open folder ``name`` inside the folder ``parent`` without following a symlink.

    Creates it (mode 0700, fixed at the end of the restore) when ``create`` and missing.
    Raises ``ConflictError`` when ``name`` is a symlink or not a folder, and
    ``FileNotFoundError`` when missing and not ``create``.
    """
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ConflictError(
                f"refusing to restore through {shown!r}: it is a symlink or not a folder",
                hint="Restore into an empty folder, or remove what is in the way.",
            ) from exc
        raise
    with contextlib.suppress(FileExistsError):  # created meanwhile: the open below checks it
        os.mkdir(name, 0o700, dir_fd=parent)
    return open_child(parent, name, shown, create=False)


def sync_filesystem(folder: str) -> None:
    """Write back everything the filesystem holding ``folder`` has in memory (``syncfs``;
    a whole-machine ``sync`` where the C library lacks it). One call makes every file and
    folder a restore wrote durable, in bulk rather than one fsync at a time."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _syncfs is None or _syncfs(descriptor) != 0:
            os.sync()
    finally:
        os.close(descriptor)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        library = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = library.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    syncfs: Callable[[int], int] = function
    return syncfs


_syncfs: Final = _load_syncfs()


def open_folder(anchor: str, parts: tuple[str, ...], *, create: bool = False) -> int:
    """Open ``anchor/parts...`` component by component, never following a symlink."""
    descriptor = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for index, name in enumerate(parts):
        try:
            child = open_child(descriptor, name, "/".join(parts[: index + 1]), create=create)
        finally:
            os.close(descriptor)
        descriptor = child
    return descriptor


class FolderChain:
    """The open folders from an anchor down to the folder last asked for.

    Entries arrive in walk order, so consecutive requests share most of their chain and
    only the differing tail is closed and opened; at most one descriptor per level is held.
    With ``durable``, a folder written into is fsync'ed when closed, so renames into it
    survive a crash.
    """

    def __init__(self, *, durable: bool = True) -> None:
        self._durable = durable
        self._anchor: str | None = None
        self._anchor_descriptor = -1
        self._parts: list[str] = []
        self._descriptors: list[int] = []
        self._dirty: list[bool] = []
        self._opened: tuple[str, ...] | None = None
        """``parts`` of the last :meth:`open` while the chain holds exactly them."""

    def open(self, anchor: str, parts: tuple[str, ...]) -> int:
        """Return a descriptor of ``anchor/parts...``, creating missing folders."""
        if anchor == self._anchor and parts == self._opened:
            return self._top()  # the folder of the entry before: the common case
        self._opened = None
        if anchor != self._anchor:
            self.close()
            Path(anchor).mkdir(parents=True, exist_ok=True)
            self._anchor_descriptor = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self._anchor = anchor
        common = 0
        while common < min(len(parts), len(self._parts)) and self._parts[common] == parts[common]:
            common += 1
        while len(self._parts) > common:
            self._pop()
        for name in parts[common:]:
            shown = "/".join([*self._parts, name])
            descriptor = open_child(self._top(), name, shown, create=True)
            self._parts.append(name)
            self._descriptors.append(descriptor)
            self._dirty.append(False)
        self._opened = parts
        return self._top()

    def mark_written(self) -> None:
        """Note that the folder last opened got a new name in it (fsync it on close)."""
        if self._dirty:
            self._dirty[-1] = True

    def close(self) -> None:
        """Close every descriptor held."""
        self._opened = None
        while self._parts:
            self._pop()
        if self._anchor_descriptor >= 0:
            os.close(self._anchor_descriptor)
        self._anchor, self._anchor_descriptor = None, -1

    def _top(self) -> int:
        return self._descriptors[-1] if self._descriptors else self._anchor_descriptor

    def _pop(self) -> None:
        self._parts.pop()
        descriptor = self._descriptors.pop()
        try:
            if self._dirty.pop() and self._durable:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)


class StreamCursor:
    """Reads byte ranges of content streams, keeping the current stream open.

    The index lists files in the order their bytes were written, so a full restore reads
    each stream once, front to back; a jump backwards (or to another stream) reopens.
    """

    def __init__(self, reader: StreamReader) -> None:
        self._reader = reader
        self._stack = ExitStack()
        self._name: str | None = None
        self._stream: ReadableStream | None = None
        self._position = 0

    def copy(
        self, name: str, offset: int, length: int, write: Callable[[bytes], None]
    ) -> tuple[str, int]:
        """Copy ``length`` bytes at ``offset`` of stream ``name`` into ``write``.

        Returns the SHA-256 (hex) of what was copied and how many bytes that was (less
        than ``length`` when the stream is too short). Errors of the reader propagate.
        """
        try:
            stream = self._seek(name, offset)
            digest, remaining = hashlib.sha256(), length
            while remaining > 0:
                block = stream.read(min(BLOCK_SIZE, remaining))
                if not block:
                    break
                write(block)
                digest.update(block)
                remaining -= len(block)
                self._position += len(block)
        except BaseException:
            self.close()
            raise
        return digest.hexdigest(), length - remaining

    def _seek(self, name: str, offset: int) -> ReadableStream:
        if self._stream is None or name != self._name or offset < self._position:
            self.close()
            self._stream = self._stack.enter_context(self._reader.open_stream(name))
            self._name, self._position = name, 0
        while self._position < offset:
            skipped = self._stream.read(min(BLOCK_SIZE, offset - self._position))
            if not skipped:
                break
            self._position += len(skipped)
        return self._stream

    def close(self) -> None:
        """Close the open stream, if any."""
        self._stream, self._name, self._position = None, None, 0
        self._stack.close()

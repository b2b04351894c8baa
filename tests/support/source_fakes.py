"""In-memory fakes of strongroom's own stream interfaces (``StreamSink``, ``StreamReader``),
and an independent description of a directory tree to compare restores with.

``MemorySink`` keeps every stream as bytes; ``ReusingMemorySink`` adds the optional reuse
capability of the files cache, backed by a content store shared between backups (as a
vault would be); ``MemoryReader`` serves a dict of streams back.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from strongroom.errors import NotFoundError
from strongroom.sources.base import JsonObject


class _Buffer:
    def __init__(self, on_write: Callable[[str, bytes], None] | None, name: str) -> None:
        self._parts: list[bytes] = []
        self._on_write = on_write
        self._name = name

    def write(self, data: bytes, /) -> int:
        if self._on_write is not None:
            self._on_write(self._name, data)
        self._parts.append(bytes(data))
        return len(data)

    def value(self) -> bytes:
        return b"".join(self._parts)


class MemorySink:
    """Keeps the streams of one backup in ``streams``; ``on_write`` sees every write."""

    def __init__(self, on_write: Callable[[str, bytes], None] | None = None) -> None:
        self.streams: dict[str, bytes] = {}
        self.on_write = on_write

    @contextmanager
    def open_stream(self, name: str) -> Iterator[_Buffer]:
        assert name not in self.streams, f"stream {name} written twice"
        buffer = _Buffer(self.on_write, name)
        yield buffer
        self.streams[name] = buffer.value()


class ReusingMemorySink(MemorySink):
    """A sink that can re-emit content stored by an earlier backup without its bytes."""

    def __init__(self, store: dict[str, bytes]) -> None:
        super().__init__()
        self.store = store
        self.reused: list[str] = []

    @contextmanager
    def open_stream(self, name: str) -> Iterator[_Buffer]:
        with super().open_stream(name) as buffer:
            yield buffer
        data = self.streams[name]
        self.store[hashlib.sha256(data).hexdigest()] = data

    def stream_reference(self, name: str) -> JsonObject | None:
        return {"sha256": hashlib.sha256(self.streams[name]).hexdigest()}

    def reuse(self, name: str, previous_reference: JsonObject) -> bool:
        data = self.store.get(str(previous_reference.get("sha256")))
        if data is None:
            return False
        self.streams[name] = data
        self.reused.append(name)
        return True


class MemoryReader:
    """Serves streams from a dict; counts how often each one is opened."""

    def __init__(self, streams: dict[str, bytes]) -> None:
        self.streams = dict(streams)
        self.opened: list[str] = []

    def stream_names(self) -> list[str]:
        return sorted(self.streams)

    @contextmanager
    def open_stream(self, name: str) -> Iterator[io.BytesIO]:
        if name not in self.streams:
            raise NotFoundError(f"no stream {name!r} in this recovery point")
        self.opened.append(name)
        yield io.BytesIO(self.streams[name])


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Describe a tree independently of strongroom: per relative path, what a restore keeps.

    Files: mode, mtime_ns, content, xattrs and a hard-link group (the first path, in
    sorted order, sharing the inode); symlinks: link text and mtime_ns; folders: mode,
    mtime_ns, xattrs.
    """
    paths: list[Path] = [root]
    for directory, names, files in os.walk(root):
        paths.extend(Path(directory, name) for name in sorted(names + files))
    state: dict[str, tuple[object, ...]] = {}
    first_of_inode: dict[tuple[int, int], str] = {}
    for path in sorted(paths, key=lambda item: os.fsencode(str(item))):
        status = path.lstat()
        relative = os.path.relpath(path, root)
        if stat.S_ISLNK(status.st_mode):
            text = os.readlink(path)  # noqa: PTH115 - exact link text; Path would normalise it
            state[relative] = ("symlink", text, status.st_mtime_ns)
            continue
        try:
            names = sorted(os.listxattr(path, follow_symlinks=False))
            xattrs = {name: os.getxattr(path, name, follow_symlinks=False) for name in names}
        except OSError:
            xattrs = {}
        mode = stat.S_IMODE(status.st_mode)
        if stat.S_ISDIR(status.st_mode):
            state[relative] = ("dir", mode, status.st_mtime_ns, xattrs)
            continue
        group = first_of_inode.setdefault((status.st_dev, status.st_ino), relative)
        content = path.read_bytes()
        state[relative] = ("file", mode, status.st_mtime_ns, content, xattrs, group)
    return state

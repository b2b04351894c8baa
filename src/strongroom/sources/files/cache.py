"""The files cache: skip reading files that did not change since the last backup.

Skipping a read only saves work when the sink can put the earlier content into the new
recovery point without being sent the bytes again. A sink says it can by offering the two
methods of :class:`ReusingSink`: ``stream_reference(name)`` (after a stream is closed, an
opaque JSON value naming its content, e.g. its chunk ids) and ``reuse(name, reference)``
(create stream ``name`` with that content; False when it cannot, e.g. the data was
collected). With any other sink every file is read and no cache is kept.

Reuse works on whole content streams (see :mod:`strongroom.sources.files.content`): a large
file's own stream is reused when the file is unchanged; a pack of small files is reused when
every file in it is unchanged and the pack would come out byte for byte as before.

The cache is one SQLite file (stdlib ``sqlite3``) so memory stays bounded whatever the
number of files. It has two tables:

* ``streams``: one row per content stream of the last backup: the sink's reference (stored
  once, not once per file), the stream's whole length, and the generation (the number of
  the backup) that last wrote or reused it;
* ``files``: per absolute path, the identity its content was read under (device, inode,
  size, mtime_ns, ctime_ns), its SHA-256 and extended attributes (as recorded in the
  index), and where it was stored: the stream, its position in the stream, offset and
  length.

A reuse is decided for a whole stream at once (:meth:`FileCache.stream_of` loads the rows of
one stream in one query), and a reused stream costs one row update: its files' rows are
left as they are, since they are unchanged by definition. At the end of a backup, streams
not written or reused by it are dropped with their files' rows (a file read again has moved
to a new stream; a file that is gone stays in a stream nobody reused). All changes are one
transaction, committed only when the source's backup succeeds (a reference to data the
vault then failed to commit is caught by ``reuse`` returning False).

The key is the identity: a file whose content changed while a tool preserved its size and
mtime still shows a new ctime (which no tool can set) or a new inode (when it was replaced
by a rename). Changes to extended attributes, modes and owners change the ctime too, so
the extended attributes kept here are only used while the ctime is the same. Files whose
mtime or ctime falls within :data:`RACY_MARGIN_NS` of the backup's start are not cached: a
change in the same timestamp tick as the read would be invisible to the key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple, Protocol, runtime_checkable

from strongroom.errors import BusyError
from strongroom.sources.base import JsonObject, WritableStream
from strongroom.sources.files.walk import WalkItem

RACY_MARGIN_NS: Final = 2_000_000_000
_SCHEMA_VERSION: Final = "2"
_SCHEMA: Final = (
    "CREATE TABLE streams (id INTEGER PRIMARY KEY, reference TEXT NOT NULL,"
    " length INTEGER NOT NULL, generation INTEGER NOT NULL)",
    "CREATE TABLE files (path BLOB PRIMARY KEY, stream INTEGER NOT NULL,"
    " position INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,"
    " device INTEGER NOT NULL, inode INTEGER NOT NULL, size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,"
    " xattrs TEXT)",
    "CREATE INDEX files_by_stream ON files (stream, position)",
)


@runtime_checkable
class ReusingSink(Protocol):
    """A stream sink that can re-emit content it stored before, without its bytes."""

    def open_stream(self, name: str) -> AbstractContextManager[WritableStream]:
        """Open a new stream (as :class:`strongroom.sources.base.StreamSink`)."""
        ...

    def stream_reference(self, name: str) -> JsonObject | None:
        """Return an opaque reference to the content of the closed stream ``name``."""
        ...

    def reuse(self, name: str, previous_reference: JsonObject) -> bool:
        """Create stream ``name`` with the referenced content; False if it cannot."""
        ...


class Placed(NamedTuple):
    """Where a file's bytes are in their content stream, their SHA-256, and the file's xattrs.

    ``xattrs`` are as the index records them (values in base64), None when there are none.
    """

    sha256: str
    offset: int
    length: int
    xattrs: dict[str, str] | None


@dataclass(frozen=True)
class CachedStream:
    """A stream of the previous backup that held exactly the files asked about, unchanged."""

    id: int
    reference: JsonObject
    reference_text: str
    length: int
    files: list[Placed]


class StoredFile(NamedTuple):
    """A file just written to a stream: its path, its identity after the read, and where."""

    absolute: str
    status: os.stat_result
    placed: Placed


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class FileCache:
    """The cache file of one files resource, open for the length of one backup."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Files changed this recently may change again within one timestamp tick.
        self._cutoff_ns = time.time_ns() - RACY_MARGIN_NS
        try:
            self._connection = self._open(path)
        except sqlite3.DatabaseError:
            # A damaged cache is only lost work: start a new one.
            path.unlink(missing_ok=True)
            self._connection = self._open(path)

    def _open(self, path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=5, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            connection.close()
            raise BusyError(f"the files cache {path} is in use by another backup") from exc
        connection.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        version = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        if version is None or version[0] != _SCHEMA_VERSION:
            connection.execute("DROP TABLE IF EXISTS files")
            connection.execute("DROP TABLE IF EXISTS streams")
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(
                "INSERT OR REPLACE INTO meta VALUES ('version', ?), ('generation', '0')",
                (_SCHEMA_VERSION,),
            )
        row = connection.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        self._generation = int(row[0]) + 1
        return connection

    def stream_of(self, items: Sequence[WalkItem]) -> CachedStream | None:
        """Return the stream of the previous backup that held exactly ``items``, unchanged.

        Given the files of a stream about to be written, in order. Returns None unless the
        previous backup stored the first of them in a stream whose files are these, in this
        order, each with its identity (device, inode, size, mtime_ns, ctime_ns) unchanged
        and contiguous from offset 0 to the stream's end: a stream that would come out
        byte for byte as before.
        """
        connection = self._connection
        stream = connection.execute(
            "SELECT streams.id, streams.reference, streams.length FROM files"
            " JOIN streams ON streams.id = files.stream WHERE files.path = ?",
            (os.fsencode(items[0].absolute),),
        ).fetchone()
        if stream is None:
            return None
        rows = connection.execute(
            "SELECT path, device, inode, size, mtime_ns, ctime_ns, sha256, offset, length,"
            " xattrs FROM files WHERE stream = ? ORDER BY position",
            (stream[0],),
        ).fetchall()
        if len(rows) != len(items):
            return None
        files: list[Placed] = []
        offset = 0
        for item, row in zip(items, rows, strict=True):
            status = item.stat
            if (
                row[7] != offset
                or row[3] != status.st_size
                or row[4] != status.st_mtime_ns
                or row[5] != status.st_ctime_ns
                or row[2] != status.st_ino
                or row[1] != status.st_dev
                or row[0] != os.fsencode(item.absolute)
            ):
                return None
            offset += row[8]
            xattrs = json.loads(row[9]) if row[9] is not None else None
            files.append(Placed(row[6], offset - row[8], row[8], xattrs))
        if offset != stream[2]:
            return None
        return CachedStream(stream[0], json.loads(stream[1]), stream[1], stream[2], files)

    def keep(self, stream: CachedStream, reference: JsonObject) -> None:
        """Keep ``stream`` (reused by this backup, now known by ``reference``) and its files."""
        text = stream.reference_text if reference == stream.reference else _dumps(reference)
        self._connection.execute(
            "UPDATE streams SET reference = ?, generation = ? WHERE id = ?",
            (text, self._generation, stream.id),
        )

    def store(self, reference: JsonObject, length: int, files: Iterable[StoredFile]) -> None:
        """Remember a stream written by this backup (``length`` bytes) and its ``files``.

        Files changed within :data:`RACY_MARGIN_NS` of the backup's start are left out.
        """
        connection = self._connection
        cursor = connection.execute(
            "INSERT INTO streams (reference, length, generation) VALUES (?, ?, ?)",
            (_dumps(reference), length, self._generation),
        )
        stream = cursor.lastrowid
        rows: list[tuple[object, ...]] = []
        recent: list[tuple[bytes]] = []
        for position, stored in enumerate(files):
            key = os.fsencode(stored.absolute)
            status, placed = stored.status, stored.placed
            if max(status.st_mtime_ns, status.st_ctime_ns) >= self._cutoff_ns:
                recent.append((key,))
                continue
            rows.append(
                (
                    key,
                    stream,
                    position,
                    placed.offset,
                    placed.length,
                    status.st_dev,
                    status.st_ino,
                    status.st_size,
                    status.st_mtime_ns,
                    status.st_ctime_ns,
                    placed.sha256,
                    _dumps(placed.xattrs) if placed.xattrs else None,
                )
            )
        connection.executemany(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
        connection.executemany("DELETE FROM files WHERE path = ?", recent)

    def commit(self) -> None:
        """Drop the streams (and their files) this backup did not keep, and close."""
        connection = self._connection
        connection.execute(
            "DELETE FROM files WHERE stream IN (SELECT id FROM streams WHERE generation < ?)",
            (self._generation,),
        )
        connection.execute("DELETE FROM streams WHERE generation < ?", (self._generation,))
        connection.execute(
            "UPDATE meta SET value = ? WHERE key = 'generation'", (str(self._generation),)
        )
        connection.execute("COMMIT")
        connection.close()

    def rollback(self) -> None:
        """Forget every change of this backup, and close."""
        self._connection.execute("ROLLBACK")
        self._connection.close()

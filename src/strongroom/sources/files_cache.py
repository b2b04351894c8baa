"""The files cache: skip reading files that did not change since the last backup.

Skipping a read only saves work when the sink can put the earlier content into the new
recovery point without being sent the bytes again. A sink says it can by offering the two
methods of :class:`ReusingSink`: ``stream_reference(name)`` (after a stream is closed, an
opaque JSON value naming its content, e.g. its chunk ids) and ``reuse(name, reference)``
(create stream ``name`` with that content; False when it cannot, e.g. the data was
collected). With any other sink every file is read and no cache is kept.

Reuse works on whole content streams (see :mod:`strongroom.sources.files_content`): a large
file's own stream is reused when the file is unchanged; a pack of small files is reused when
every file in it is unchanged and the pack would come out byte for byte as before.

The cache is one SQLite file (stdlib ``sqlite3``) so memory stays bounded whatever the
number of files. Per absolute path it keeps the identity the content was read under
(device, inode, size, mtime_ns, ctime_ns), its SHA-256, and where it was stored (the sink's
stream reference, offset, length and the stream's whole length). Rows not seen in a backup
are dropped at its end; all changes are one transaction, committed only when the source's
backup succeeds (a reference to data the vault then failed to commit is caught by
``reuse`` returning False). Files whose mtime or ctime falls within :data:`RACY_MARGIN_NS`
of the backup's start are not cached: a change in the same timestamp tick as the read
would be invisible to the key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from strongroom.errors import ConflictError
from strongroom.sources.base import JsonObject, WritableStream

RACY_MARGIN_NS: Final = 2_000_000_000
_SCHEMA_VERSION: Final = "1"


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


@dataclass(frozen=True)
class CachedContent:
    """Where an unchanged file's bytes were stored last time, and their SHA-256."""

    sha256: str
    reference: JsonObject
    offset: int
    length: int
    stream_length: int


def _identity(status: os.stat_result) -> tuple[int, int, int, int, int]:
    return (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    )


class FileCache:
    """The cache file of one files resource, open for the length of one backup."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._started_ns = time.time_ns()
        try:
            self._connection = self._open(path)
        except sqlite3.DatabaseError:
            # A damaged cache is only lost work: start a new one.
            path.unlink(missing_ok=True)
            self._connection = self._open(path)
        self.hits = 0

    def _open(self, path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=5, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            connection.close()
            raise ConflictError(
                f"the files cache {path} is in use by another backup", retryable=True
            ) from exc
        connection.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        version = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        if version is None or version[0] != _SCHEMA_VERSION:
            connection.execute("DROP TABLE IF EXISTS files")
            connection.execute(
                "CREATE TABLE files (path BLOB PRIMARY KEY, device INTEGER, inode INTEGER,"
                " size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT,"
                " reference TEXT, offset INTEGER, length INTEGER, stream_length INTEGER,"
                " generation INTEGER)"
            )
            connection.execute(
                "INSERT OR REPLACE INTO meta VALUES ('version', ?), ('generation', '0')",
                (_SCHEMA_VERSION,),
            )
        row = connection.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        self._generation = int(row[0]) + 1
        return connection

    def lookup(self, absolute: str, status: os.stat_result) -> CachedContent | None:
        """Return what was stored for ``absolute`` if its identity is unchanged."""
        row = self._connection.execute(
            "SELECT device, inode, size, mtime_ns, ctime_ns, sha256, reference, offset,"
            " length, stream_length FROM files WHERE path = ?",
            (os.fsencode(absolute),),
        ).fetchone()
        if row is None or tuple(row[:5]) != _identity(status):
            return None
        return CachedContent(row[5], json.loads(row[6]), row[7], row[8], row[9])

    def store(self, absolute: str, status: os.stat_result, content: CachedContent) -> None:
        """Remember where ``absolute`` (read under ``status``) was stored in this backup."""
        key = os.fsencode(absolute)
        if max(status.st_mtime_ns, status.st_ctime_ns) >= self._started_ns - RACY_MARGIN_NS:
            self._connection.execute("DELETE FROM files WHERE path = ?", (key,))
            return
        self._connection.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                *_identity(status),
                content.sha256,
                json.dumps(content.reference, sort_keys=True),
                content.offset,
                content.length,
                content.stream_length,
                self._generation,
            ),
        )

    def commit(self) -> None:
        """Drop the rows this backup did not see, keep the rest, and close."""
        connection = self._connection
        connection.execute("DELETE FROM files WHERE generation < ?", (self._generation,))
        connection.execute(
            "UPDATE meta SET value = ? WHERE key = 'generation'", (str(self._generation),)
        )
        connection.execute("COMMIT")
        connection.close()

    def rollback(self) -> None:
        """Forget every change of this backup, and close."""
        self._connection.execute("ROLLBACK")
        self._connection.close()

"""The ``sqlite`` source: one SQLite database file, copied with the online backup API.

Backup: a read transaction is opened on the database (waiting up to ``busy_timeout`` for
a writer's lock, then a retryable ``BusyError``), and ``sqlite3.Connection.backup``
copies the database into a file in the scratch folder in a single step inside it, so the
copy is a consistent snapshot even while other connections write (in WAL mode they go on
writing; in rollback journal mode their commits wait for the copy). The copy is streamed as
``database.sqlite`` and then inspected; the metadata records the SQLite version, page
size and count, the ``PRAGMA integrity_check`` result, a SHA-256 of the schema, and per
table the row count and a content checksum.

Table checksum: SHA-256 over the column names, then every row in ``rowid`` order (primary
key order for ``WITHOUT ROWID`` tables), each value encoded with its storage class
(NULL, INTEGER as decimal, REAL as ``float.hex``, TEXT and BLOB as length-prefixed bytes),
so a changed value, a type change or a moved row changes the checksum. Virtual tables are
left out (their content lives in ordinary shadow tables, which are included).

Restore writes a temporary file next to the target, checks its SHA-256 and renames it into
place; an existing target is replaced only with ``overwrite``, and never while a ``-wal``
or ``-journal`` file lies beside it (it would be replayed into the restored database).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Final
from urllib.parse import quote

from pydantic import Field, model_validator

from strongroom.config.resources import SqliteResource
from strongroom.config.types import AbsolutePath, ConfigModel
from strongroom.errors import (
    BusyError,
    ChangedMeanwhileError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    StrongroomError,
)
from strongroom.sources.base import (
    BackupResult,
    Check,
    Description,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    StreamSink,
    iter_stream,
)
from strongroom.sources.targets import parse_target

STREAM: Final = "database.sqlite"
FORMAT: Final = "strongroom-sqlite"
VERSION: Final = 1
BLOCK_SIZE: Final = 1024 * 1024
_INTEGRITY_LINES: Final = 20


class SqliteRestoreTarget(ConfigModel):
    """Where a SQLite restore writes (the ``target`` of :meth:`SqliteSource.restore`)."""

    path: AbsolutePath | None = Field(default=None, description="Write the database to this file.")
    original: bool = Field(
        default=False, description="Write the database back where it was backed up from."
    )
    overwrite: bool = Field(
        default=False, description="Replace an existing file (never with a -wal beside it)."
    )

    @model_validator(mode="after")
    def _one_place(self) -> SqliteRestoreTarget:
        if (self.path is None) == (not self.original):
            raise ValueError("give exactly one of 'path' (a file) or 'original: true'")
        return self


class _Text(bytes):
    """TEXT values as their stored bytes, told apart from BLOBs (any encoding is kept)."""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _encode(value: object) -> bytes:
    if value is None:
        return b"N"
    if isinstance(value, _Text):
        return b"T%d:" % len(value) + value
    if isinstance(value, bytes):
        return b"B%d:" % len(value) + value
    if isinstance(value, int):
        return b"I%d;" % value
    if isinstance(value, float):
        return b"F" + value.hex().encode("ascii") + b";"
    raise TypeError(f"unexpected SQLite value type {type(value).__name__}")


def table_checksum(connection: sqlite3.Connection, table: str) -> tuple[int, str]:
    """Return the row count and content checksum (hex) of ``table``; see the module doc."""
    quoted = _quote(table)
    try:
        connection.execute(f"SELECT rowid FROM {quoted} LIMIT 0")  # noqa: S608 - quoted identifier
        order = "rowid"
    except sqlite3.OperationalError:  # WITHOUT ROWID: its primary key orders the rows
        columns = connection.execute(f"PRAGMA table_info({quoted})").fetchall()
        keys = sorted((column[5], column[1]) for column in columns if column[5] > 0)
        order = ", ".join(_quote(str(name)) for _position, name in keys)
    cursor = connection.execute(f"SELECT * FROM {quoted} ORDER BY {order}")  # noqa: S608
    digest = hashlib.sha256()
    names = [str(column[0]) for column in cursor.description]
    digest.update(b"".join(_encode(_Text(name.encode())) for name in names) + b"\n")
    rows = 0
    for row in cursor:
        digest.update(b"".join(_encode(value) for value in row) + b"\n")
        rows += 1
    return rows, digest.hexdigest()


@dataclass
class Facts:
    """What an inspection of a database file found."""

    integrity_check: str
    page_size: int
    page_count: int
    user_version: int
    schema_sha256: str
    tables: dict[str, JsonObject] = field(default_factory=dict)


def inspect(path: Path) -> Facts:
    """Open a database file and gather its facts (integrity, schema, per-table checksums).

    Raises ``sqlite3.DatabaseError`` when the file is not a readable database.
    """
    connection = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True)
    try:
        lines = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
        schema = connection.execute(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        schema_digest = hashlib.sha256()
        for row in schema:
            schema_digest.update("\x1f".join(str(value) for value in row).encode() + b"\x1e")
        facts = Facts(
            integrity_check="\n".join(lines[:_INTEGRITY_LINES]),
            page_size=int(connection.execute("PRAGMA page_size").fetchone()[0]),
            page_count=int(connection.execute("PRAGMA page_count").fetchone()[0]),
            user_version=int(connection.execute("PRAGMA user_version").fetchone()[0]),
            schema_sha256=schema_digest.hexdigest(),
        )
        connection.text_factory = _Text
        for kind, name, _table, sql in schema:
            if kind == "table" and not str(sql).upper().startswith("CREATE VIRTUAL"):
                rows, checksum = table_checksum(connection, str(name))
                facts.tables[str(name)] = {"rows": rows, "sha256": checksum}
    finally:
        connection.close()
    return facts


def _sqlite_error(exc: sqlite3.Error, path: str) -> StrongroomError:
    message = f"SQLite database {path}: {exc}"
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return BusyError(message, hint="Retry when the writer is done.")
    if "unable to open" in text and not Path(path).exists():
        return NotFoundError(message)
    return StrongroomError(message)


def _copy_in(reader: StreamReader, destination: Path) -> str:
    """Write the database stream to a new file (refusing to follow or reuse a name)."""
    digest = hashlib.sha256()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(destination, flags, 0o600)
    with os.fdopen(descriptor, "wb") as handle, reader.open_stream(STREAM) as stream:
        for block in iter_stream(stream, BLOCK_SIZE):
            handle.write(block)
            digest.update(block)
        handle.flush()
        os.fsync(handle.fileno())
    return digest.hexdigest()


class SqliteSource:
    """Backs up and restores one SQLite database file; see the module docstring.

    Given the resource settings and ``busy_timeout`` (seconds to wait for a lock).
    """

    type_name: ClassVar[str] = "sqlite"

    def __init__(self, settings: SqliteResource, *, busy_timeout: float = 30.0) -> None:
        self.settings = settings
        self.path = os.path.normpath(settings.path)
        self.busy_timeout = busy_timeout

    def describe(self, context: SourceContext) -> Description:
        """Name the database file and the SQLite library version in use."""
        return Description(
            summary=f"SQLite database {self.path}",
            parts=[STREAM],
            tools={"sqlite": sqlite3.sqlite_version},
        )

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        """Snapshot the database into scratch, stream it as ``database.sqlite``, inspect it.

        Raises ``NotFoundError`` for a missing file, ``BusyError`` (retryable) when the
        database stays locked longer than ``busy_timeout``.
        """
        if not Path(self.path).is_file():
            raise NotFoundError(f"the SQLite database {self.path} does not exist")
        copy = context.scratch / f"sqlite-{secrets.token_hex(6)}.sqlite"
        try:
            snapshot_at = self._snapshot(copy)
            if context.dry_run:
                return BackupResult(metadata={"dry_run": True, "path": self.path})
            size, sha256 = 0, hashlib.sha256()
            with copy.open("rb") as handle, sink.open_stream(STREAM) as stream:
                while block := handle.read(BLOCK_SIZE):
                    context.check_cancelled()
                    stream.write(block)
                    sha256.update(block)
                    size += len(block)
                    context.progress(len(block))
            facts = inspect(copy)
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, self.path) from exc
        finally:
            for leftover in (copy, *(Path(f"{copy}{end}") for end in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
        metadata: JsonObject = {
            "format": FORMAT,
            "version": VERSION,
            "path": self.path,
            "stream": STREAM,
            "snapshot_at": snapshot_at,
            "sqlite_version": sqlite3.sqlite_version,
            "size": size,
            "sha256": sha256.hexdigest(),
            "page_size": facts.page_size,
            "page_count": facts.page_count,
            "user_version": facts.user_version,
            "schema_sha256": facts.schema_sha256,
            "integrity_check": facts.integrity_check,
            "tables": facts.tables,
        }
        return BackupResult(metadata=metadata)

    def _snapshot(self, copy: Path) -> str:
        """Copy the database into ``copy`` in one backup step; return when (UTC, ISO)."""
        # mode=rw never creates a missing file, falls back to read-only on a protected
        # file, and (unlike mode=ro) leaves no -wal/-shm behind on close.
        uri = f"file:{quote(self.path)}?mode=rw"
        source = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None)
        try:
            # Connection.backup retries a busy database forever (in C, deaf to cancel and
            # to the busy timeout): take the read lock first, where the timeout applies.
            # The backup step then copies inside this read transaction: one snapshot.
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_master").fetchone()
            target = sqlite3.connect(copy)
            try:
                source.backup(target, pages=-1)
                snapshot_at = datetime.now(UTC).isoformat()
            finally:
                target.close()
            source.execute("COMMIT")
        finally:
            source.close()
        return snapshot_at

    def restore(
        self,
        context: SourceContext,
        reader: StreamReader,
        metadata: JsonObject,
        target: JsonObject,
    ) -> RestoreReport:
        """Restore the database file to ``target`` (see :class:`SqliteRestoreTarget`).

        Raises ``ConfigError`` for a bad target, ``ConflictError`` when the file exists
        (without ``overwrite``) or a ``-wal``/``-journal`` lies beside it,
        ``IntegrityError`` when the bytes do not match the recorded SHA-256; in every such
        case the target is left as it was.
        """
        options = parse_target(SqliteRestoreTarget, target, self.type_name)
        destination = Path(options.path or str(metadata.get("path") or self.path))
        for end in ("-wal", "-journal"):
            if os.path.lexists(f"{destination}{end}"):
                raise ConflictError(
                    f"refusing to restore {destination}: {destination}{end} exists and would "
                    "be replayed into the restored database",
                    hint="Stop the application using the database, then remove that file.",
                )
        if os.path.lexists(destination) and not options.overwrite:
            raise ConflictError(f"{destination} already exists", hint="Ask to overwrite it.")
        report = RestoreReport(target=str(destination))
        if context.dry_run:
            report.notes.append(f"dry run: would write {destination}")
            return report
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.strongroom-{secrets.token_hex(6)}")
        try:
            sha256 = _copy_in(reader, temporary)
            if sha256 != metadata.get("sha256"):
                raise IntegrityError(
                    f"the stored database does not match the SHA-256 recorded at backup "
                    f"time; {destination} was not touched"
                )
            if options.overwrite:
                temporary.replace(destination)
            else:
                try:
                    os.link(temporary, destination)
                except FileExistsError as exc:
                    raise ChangedMeanwhileError(f"{destination} appeared meanwhile") from exc
        finally:
            temporary.unlink(missing_ok=True)
        descriptor = os.open(destination.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        report.checks.append(Check(f"sha256 of {STREAM}", metadata.get("sha256"), sha256))
        return report

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        """Restore into scratch; check integrity, schema, row counts and table checksums."""
        folder = context.scratch / f"sqlite-restore-test-{secrets.token_hex(6)}"
        report = RestoreReport(target=str(folder))
        try:
            folder.mkdir(parents=True)
            database = folder / "database.sqlite"
            sha256 = _copy_in(reader, database)
            report.checks.append(Check(f"sha256 of {STREAM}", metadata.get("sha256"), sha256))
            try:
                facts = inspect(database)
            except sqlite3.DatabaseError as exc:
                report.checks.append(Check("database opens", "ok", str(exc)))
                return report
            report.checks.append(Check("integrity_check", "ok", facts.integrity_check))
            report.checks.append(
                Check("schema sha256", metadata.get("schema_sha256"), facts.schema_sha256)
            )
            recorded = metadata.get("tables") or {}
            report.checks.append(Check("tables", sorted(recorded), sorted(facts.tables)))
            for table, expected in sorted(recorded.items()):
                found = facts.tables.get(table, {})
                report.checks.append(
                    Check(f"rows of table {table}", expected.get("rows"), found.get("rows"))
                )
                report.checks.append(
                    Check(f"checksum of table {table}", expected.get("sha256"), found.get("sha256"))
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return report

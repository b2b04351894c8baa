"""The sqlite source with real database files: snapshots, restores, restore tests."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.config.resources import SqliteResource
from strongroom.errors import ConfigError, ConflictError, IntegrityError, NotFoundError
from strongroom.sources.base import BackupResult, Source, SourceContext
from strongroom.sources.sqlite import SqliteSource
from tests.support.source_fakes import MemoryReader, MemorySink


def make_database(path: Path, *, wal: bool = True) -> None:
    with sqlite3.connect(path) as connection:
        if wal:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, data BLOB, price REAL)"
        )
        connection.execute(
            'CREATE TABLE "odd ""name"" table" (k TEXT, n INTEGER, PRIMARY KEY (k, n))'
            " WITHOUT ROWID"
        )
        connection.execute("CREATE TABLE plain (value)")
        connection.executemany(
            "INSERT INTO items (name, data, price) VALUES (?, ?, ?)",
            [(f"item {index} ☕", bytes([index % 256]) * index, index / 7) for index in range(500)],
        )
        connection.executemany(
            'INSERT INTO "odd ""name"" table" VALUES (?, ?)',
            [(f"k{index}", index) for index in range(40)],
        )
        connection.executemany(
            "INSERT INTO plain VALUES (?)", [(None,), (1,), ("1",), (b"1",), (1.0,)]
        )
    connection.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    make_database(path)
    return path


@pytest.fixture
def context(tmp_path: Path) -> SourceContext:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return SourceContext(scratch=scratch)


def source(path: Path, **options: float) -> SqliteSource:
    return SqliteSource(SqliteResource(type="sqlite", path=str(path)), **options)


def backup(path: Path, context: SourceContext) -> tuple[BackupResult, MemorySink]:
    sink = MemorySink()
    return source(path).backup(context, sink), sink


def test_backup_records_what_a_restore_is_checked_against(
    database: Path, context: SourceContext
) -> None:
    result, sink = backup(database, context)
    metadata = result.metadata
    assert list(sink.streams) == ["database.sqlite"]
    assert metadata["integrity_check"] == "ok"
    assert metadata["sqlite_version"] == sqlite3.sqlite_version
    assert metadata["page_size"] > 0
    assert {name: table["rows"] for name, table in metadata["tables"].items()} == {
        "items": 500,
        'odd "name" table': 40,
        "plain": 5,
    }
    assert list(context.scratch.iterdir()) == []


def test_restore_test_passes_and_removes_its_scratch(
    database: Path, context: SourceContext
) -> None:
    result, sink = backup(database, context)
    report = source(database).restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures
    assert "checksum of table items" in {check.name for check in report.checks}
    assert list(context.scratch.iterdir()) == []


def test_checksums_tell_storage_classes_apart(tmp_path: Path, context: SourceContext) -> None:
    checksums = []
    for value in (1, "1", b"1", 1.0, None):
        path = tmp_path / f"db-{len(checksums)}.sqlite"
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE t (v)")
            connection.execute("INSERT INTO t VALUES (?)", (value,))
        connection.close()
        checksums.append(backup(path, context)[0].metadata["tables"]["t"]["sha256"])
    assert len(set(checksums)) == 5


@pytest.fixture
def busy_writer(database: Path) -> Iterator[threading.Event]:
    """Another connection that keeps adding one row to two tables per transaction."""
    stop = threading.Event()

    def write() -> None:
        connection = sqlite3.connect(database, timeout=30)
        connection.execute("CREATE TABLE IF NOT EXISTS left_side (n)")
        connection.execute("CREATE TABLE IF NOT EXISTS right_side (n)")
        connection.commit()
        number = 0
        while not stop.is_set():
            with connection:
                connection.execute("INSERT INTO left_side VALUES (?)", (number,))
                connection.execute("INSERT INTO right_side VALUES (?)", (number,))
            number += 1
        connection.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join()


def test_a_backup_while_another_connection_writes_is_a_consistent_snapshot(
    database: Path, context: SourceContext, busy_writer: threading.Event, tmp_path: Path
) -> None:
    rows = 0
    while rows < 200:  # until the writer is well under way
        with sqlite3.connect(database, timeout=30) as probe:
            exists = probe.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'right_side'"
            ).fetchone()[0]
            rows = probe.execute("SELECT count(*) FROM right_side").fetchone()[0] if exists else 0
        probe.close()
    results = [backup(database, context) for _round in range(3)]
    busy_writer.set()
    assert results[-1][0].metadata["tables"]["left_side"]["rows"] >= 200

    for result, sink in results:
        tables = result.metadata["tables"]
        assert tables["left_side"]["rows"] == tables["right_side"]["rows"]
        restored = tmp_path / f"restored-{tables['left_side']['rows']}-{id(sink)}.db"
        source(database).restore(
            context, MemoryReader(sink.streams), result.metadata, {"path": str(restored)}
        )
        with sqlite3.connect(restored) as connection:
            left = connection.execute("SELECT count(*) FROM left_side").fetchone()[0]
            right = connection.execute("SELECT count(*) FROM right_side").fetchone()[0]
        connection.close()
        assert left == right == tables["left_side"]["rows"]
        report = source(database).restore_test(context, MemoryReader(sink.streams), result.metadata)
        assert report.ok, report.failures


def test_an_uncommitted_write_is_not_in_the_snapshot(
    database: Path, context: SourceContext, tmp_path: Path
) -> None:
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN")
    writer.execute("DELETE FROM items WHERE id <= 100")
    writer.execute("INSERT INTO plain VALUES ('half a transaction')")
    try:
        result, sink = backup(database, context)
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert result.metadata["tables"]["items"]["rows"] == 500
    assert result.metadata["tables"]["plain"]["rows"] == 5
    report = source(database).restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures


def test_restore_writes_the_file_and_refuses_to_overwrite_unless_asked(
    database: Path, context: SourceContext, tmp_path: Path
) -> None:
    result, sink = backup(database, context)
    target = tmp_path / "restored" / "copy.db"
    report = source(database).restore(
        context, MemoryReader(sink.streams), result.metadata, {"path": str(target)}
    )
    assert report.ok
    assert target.read_bytes() == sink.streams["database.sqlite"]

    target.write_bytes(b"newer data")
    with pytest.raises(ConflictError, match="already exists"):
        source(database).restore(
            context, MemoryReader(sink.streams), result.metadata, {"path": str(target)}
        )
    assert target.read_bytes() == b"newer data"
    source(database).restore(
        context,
        MemoryReader(sink.streams),
        result.metadata,
        {"path": str(target), "overwrite": True},
    )
    assert target.read_bytes() == sink.streams["database.sqlite"]
    assert sorted(path.name for path in target.parent.iterdir()) == ["copy.db"]


def test_restore_refuses_a_target_with_a_wal_beside_it(
    database: Path, context: SourceContext, tmp_path: Path
) -> None:
    result, sink = backup(database, context)
    target = tmp_path / "live.db"
    target.write_bytes(b"old")
    Path(f"{target}-wal").write_bytes(b"old wal")
    with pytest.raises(ConflictError, match="-wal exists"):
        source(database).restore(
            context,
            MemoryReader(sink.streams),
            result.metadata,
            {"path": str(target), "overwrite": True},
        )
    assert target.read_bytes() == b"old"


def test_restore_to_the_original_path(database: Path, context: SourceContext) -> None:
    result, sink = backup(database, context)
    for leftover in database.parent.glob("app.db*"):
        leftover.unlink()
    source(database).restore(
        context, MemoryReader(sink.streams), result.metadata, {"original": True}
    )
    assert database.read_bytes() == sink.streams["database.sqlite"]
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone()[0] == 500
    connection.close()


def tampered_copy(sink: MemorySink, tmp_path: Path, statement: str) -> bytes:
    """The backed-up bytes with one statement applied (as damage or a forged stream)."""
    path = tmp_path / "tampered.db"
    path.write_bytes(sink.streams["database.sqlite"])
    with sqlite3.connect(path) as connection:
        connection.execute(statement)
    connection.close()
    return path.read_bytes()


def test_changed_rows_fail_the_restore_test_naming_the_table(
    database: Path, context: SourceContext, tmp_path: Path
) -> None:
    result, sink = backup(database, context)
    streams = {
        "database.sqlite": tampered_copy(sink, tmp_path, "UPDATE items SET price = 0 WHERE id = 7")
    }

    report = source(database).restore_test(context, MemoryReader(streams), result.metadata)

    assert sorted(check.name for check in report.failures) == [
        "checksum of table items",
        "sha256 of database.sqlite",
    ]
    with pytest.raises(IntegrityError, match="does not match"):
        source(database).restore(
            context, MemoryReader(streams), result.metadata, {"path": str(tmp_path / "r.db")}
        )
    assert not (tmp_path / "r.db").exists()
    assert list(context.scratch.iterdir()) == []


def test_changed_recorded_metadata_fails_naming_the_table(
    database: Path, context: SourceContext
) -> None:
    result, sink = backup(database, context)
    metadata = dict(result.metadata)
    metadata["tables"] = {**metadata["tables"], "plain": {"rows": 6, "sha256": "0" * 64}}
    report = source(database).restore_test(context, MemoryReader(sink.streams), metadata)
    assert sorted(check.name for check in report.failures) == [
        "checksum of table plain",
        "rows of table plain",
    ]


def test_bytes_that_are_no_database_fail_the_restore_test(
    database: Path, context: SourceContext
) -> None:
    result, _sink = backup(database, context)
    report = source(database).restore_test(
        context, MemoryReader({"database.sqlite": b"garbage" * 1000}), result.metadata
    )
    assert not report.ok
    assert "database opens" in {check.name for check in report.failures}
    assert list(context.scratch.iterdir()) == []


def test_a_missing_database_is_not_found(tmp_path: Path, context: SourceContext) -> None:
    with pytest.raises(NotFoundError):
        backup(tmp_path / "absent.db", context)
    assert not (tmp_path / "absent.db").exists()


def test_a_database_locked_too_long_is_a_retryable_conflict(
    tmp_path: Path, context: SourceContext
) -> None:
    path = tmp_path / "journal.db"
    make_database(path, wal=False)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ConflictError) as raised:
            source(path, busy_timeout=0.1).backup(context, MemorySink())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert raised.value.retryable
    assert list(context.scratch.iterdir()) == []


def test_invalid_targets_and_protocol(database: Path, context: SourceContext) -> None:
    sqlite_source = source(database)
    assert isinstance(sqlite_source, Source)
    assert sqlite_source.describe(context).tools == {"sqlite": sqlite3.sqlite_version}
    for target in ({}, {"path": "relative.db"}, {"path": "/x.db", "original": True}):
        with pytest.raises(ConfigError):
            sqlite_source.restore(context, MemoryReader({}), {}, target)

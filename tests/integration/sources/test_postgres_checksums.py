"""Table checksums of the ``postgres`` source against the real PostgreSQL 15 of dev/services.

PostgreSQL 14 and later hash rows with ``hash_record_extended`` (``record64x2``); a table
with a column type that has no extended hash function falls back to the text form
(``hash64x2``) and says so. Either way a restore test names a table whose dumped data was
altered, and points recorded with the text form before still restore-test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from strongroom.sources.postgres import facts as postgres_facts
from strongroom.sources.postgres.server import Connection
from strongroom.sources.postgres.source import PostgresSource
from tests.integration.sources.test_postgres import (
    PASSWORD_VARIABLE,
    context_in,
    scratch_databases,
    source_for,
)
from tests.support.services import PostgresService, unique_name
from tests.support.source_fakes import MemoryReader, MemorySink

pytestmark = pytest.mark.integration

MARKER = "checksum-marker-0042"
ALTERED = "checksum-marker-9999"


@pytest.fixture
def database(postgres_service: PostgresService, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database with a hashable table and one whose columns have no extended hash."""
    monkeypatch.setenv(PASSWORD_VARIABLE, postgres_service.password)
    name = unique_name("sr_pg_sums")
    with postgres_service.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with postgres_service.connect(name, autocommit=True) as connection:
            connection.execute(
                "CREATE TABLE plain (id int PRIMARY KEY, note text, amount numeric(8, 2), "
                "at timestamptz, ratio float8, tags text[], body jsonb, raw bytea)"
            )
            connection.execute(
                "INSERT INTO plain SELECT i, 'note ' || i, i * 1.5, "
                "timestamptz '2024-01-01 00:00+00' + i * interval '1 hour', i / 7.0, "
                "ARRAY['a', NULL, i::text], jsonb_build_object('i', i), "
                "decode(md5(i::text), 'hex') FROM generate_series(1, 500) AS i"
            )
            connection.execute(
                "CREATE TABLE odd (id int PRIMARY KEY, doc json, spot point, label text)"
            )
            connection.execute(
                "INSERT INTO odd SELECT i, json_build_object('i', i), point(i, -i), "
                "'label ' || i FROM generate_series(1, 300) AS i"
            )
        yield name
    finally:
        with postgres_service.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _source(service: PostgresService, database: str) -> PostgresSource:
    return source_for(service, f"env:{PASSWORD_VARIABLE}", [database])


def _mark(service: PostgresService, database: str, statement: str) -> None:
    with service.connect(database, autocommit=True) as connection:
        connection.execute(statement, (MARKER,))


def test_hashable_tables_use_hash_record_and_others_the_text_form(
    postgres_service: PostgresService, database: str, tmp_path: Path
) -> None:
    source = _source(postgres_service, database)
    context = context_in(tmp_path)
    sink = MemorySink()

    result = source.backup(context, sink)

    entry = result.metadata["databases"][database]
    assert entry["checksum_algorithm"] == "record64x2"
    assert result.metadata["checksum"]["algorithm"] == "record64x2"
    assert entry["tables"]["public.plain"]["checksum_mode"] == "full"
    assert "checksum_algorithm" not in entry["tables"]["public.plain"]
    assert entry["tables"]["public.odd"]["checksum_algorithm"] == "hash64x2"
    report = source.restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures
    names = {check.name for check in report.checks}
    assert {f"{database}: table public.{table} checksum (full)" for table in ("plain", "odd")} <= (
        names
    )


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("plain", "UPDATE plain SET note = %s WHERE id = 250"),
        ("odd", "UPDATE odd SET label = %s WHERE id = 150"),
    ],
)
def test_an_altered_value_is_named_by_its_table_with_either_hash(
    postgres_service: PostgresService, database: str, tmp_path: Path, table: str, statement: str
) -> None:
    _mark(postgres_service, database, statement)
    source = _source(postgres_service, database)
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    streams = dict(sink.streams)
    (name,) = [stream for stream, data in streams.items() if MARKER.encode() in data]
    streams[name] = streams[name].replace(MARKER.encode(), ALTERED.encode())
    before = scratch_databases(postgres_service)

    report = source.restore_test(context, MemoryReader(streams), result.metadata)

    assert {check.name for check in report.failures} == {
        f"stream {name} sha256",
        f"{database}: table public.{table} checksum (full)",
    }
    assert scratch_databases(postgres_service) <= before


def test_points_recorded_with_the_text_form_still_restore_test(
    postgres_service: PostgresService,
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A point made before ``record64x2`` existed names ``hash64x2``; its test uses that."""
    current = postgres_facts.algorithm_for
    monkeypatch.setattr(postgres_facts, "algorithm_for", lambda _version: "hash64x2")
    source = _source(postgres_service, database)
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    monkeypatch.setattr(postgres_facts, "algorithm_for", current)
    entry = result.metadata["databases"][database]
    assert entry["checksum_algorithm"] == "hash64x2"
    assert all("checksum_algorithm" not in table for table in entry["tables"].values())

    report = source.restore_test(context, MemoryReader(sink.streams), result.metadata)

    assert report.ok, report.failures


def test_the_two_hashes_agree_on_equal_data_and_differ_on_changed_data(
    postgres_service: PostgresService, database: str
) -> None:
    """Same rows in another order give the same checksum; one changed value does not."""

    def checksum(connection: Connection, table: str) -> object:
        facts = postgres_facts.table_facts(
            connection, "public", table, "full", 0, None, "record64x2"
        )
        return facts["checksum"]

    with postgres_service.connect(database) as connection:
        connection.execute("CREATE TABLE shuffled AS SELECT * FROM plain ORDER BY random()")
        connection.execute("CREATE TABLE changed AS SELECT * FROM plain")
        connection.execute("UPDATE changed SET ratio = ratio + 1e-12 WHERE id = 7")
        assert checksum(connection, "shuffled") == checksum(connection, "plain")
        assert checksum(connection, "changed") != checksum(connection, "plain")
        connection.rollback()

"""The ``postgres`` source against the real PostgreSQL 15 of dev/services.

Each test builds its own databases (unique names) and roles and drops them afterwards;
the server is shared with other test runs, so the source is always given an explicit
database list. Fidelity is judged by :func:`tests.integration.sources.pg_data.describe`,
which reads databases with plain SQL.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from strongroom.config.resources import PostgresResource
from strongroom.errors import (
    AbortedError,
    AccessDeniedError,
    ConfigError,
    ConflictError,
    InsufficientStorageError,
    NetworkError,
    NotFoundError,
    ToolError,
)
from strongroom.sources.base import Source, SourceContext
from strongroom.sources.postgres.archive import prepare_globals, psql_knows_restrict
from strongroom.sources.postgres.dump import role_names
from strongroom.sources.postgres.server import classify_text
from strongroom.sources.postgres.source import PostgresSource, stream_base
from tests.integration.sources import pg_data
from tests.support.services import PostgresService, unique_name
from tests.support.source_fakes import MemoryReader, MemorySink

pytestmark = pytest.mark.integration

PASSWORD_VARIABLE = "STRONGROOM_TEST_SOURCE_PG_PASSWORD"


class Cluster:
    """Creates databases and roles on the shared server and drops them all at the end."""

    def __init__(self, service: PostgresService) -> None:
        self.service = service
        self.databases: list[str] = []
        self.roles: list[str] = []

    def database(self, prefix: str = "sr_pg") -> str:
        name = unique_name(prefix)
        with self.service.connect(autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.databases.append(name)
        return name

    def name(self, prefix: str = "sr_pg_restored") -> str:
        """A database name the test (or the source) will create; dropped at the end."""
        name = unique_name(prefix)
        self.databases.append(name)
        return name

    def role(self, prefix: str = "sr_pg_role", *, options: str = "NOLOGIN") -> str:
        name = unique_name(prefix)
        with self.service.connect(autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))
        self.roles.append(name)
        return name

    def drop_all(self) -> None:
        with self.service.connect(autocommit=True) as admin:
            for name in self.databases:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            for role in self.roles:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def cluster(postgres_service: PostgresService) -> Iterator[Cluster]:
    created = Cluster(postgres_service)
    try:
        yield created
    finally:
        created.drop_all()


@pytest.fixture
def password_reference(postgres_service: PostgresService, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_VARIABLE, postgres_service.password)
    return f"env:{PASSWORD_VARIABLE}"


@pytest.fixture
def sample(cluster: Cluster) -> tuple[str, str]:
    """A populated database and the role it grants privileges to."""
    role = cluster.role()
    database = cluster.database()
    pg_data.populate(cluster.service, database, role)
    return database, role


def resource(
    service: PostgresService, password: str | None, databases: list[str], **extra: Any
) -> PostgresResource:
    return PostgresResource.model_validate(
        {
            "type": "postgres",
            "host": service.host,
            "port": service.port,
            "user": service.user,
            "password": password,
            "databases": databases,
            **extra,
        }
    )


def source_for(
    service: PostgresService, password: str, databases: list[str], **options: Any
) -> PostgresSource:
    jobs = options.pop("jobs", 1)
    bindir = Path(service.bindir) if service.bindir else None
    return PostgresSource(
        resource(service, password, databases, jobs=jobs), bindir=bindir, **options
    )


def context_in(tmp_path: Path) -> SourceContext:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return SourceContext(scratch=scratch)


def scratch_databases(service: PostgresService) -> set[str]:
    with service.connect(autocommit=True) as admin:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'strongroom\\_rt\\_%'"
        ).fetchall()
    return {row[0] for row in rows}


# -- backup and restore ------------------------------------------------------------------------


def test_custom_format_streams_from_pg_dump_and_restores_faithfully(
    postgres_service: PostgresService,
    cluster: Cluster,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, role = sample
    source = source_for(postgres_service, password_reference, [database])
    context = context_in(tmp_path)
    scratch_while_writing: list[list[Path]] = []
    sink = MemorySink(
        on_write=lambda _name, _data: scratch_while_writing.append(list(context.scratch.iterdir()))
    )

    result = source.backup(context, sink)

    assert not result.partial
    assert scratch_while_writing and not any(scratch_while_writing)  # streamed, no copy
    archive = f"{stream_base(database)}.dump"
    assert sorted(sink.streams) == sorted(["globals.sql", archive])
    assert sink.streams[archive].startswith(b"PGDMP")
    assert role in sink.streams["globals.sql"].decode()
    assert list(context.scratch.iterdir()) == []
    recorded = result.metadata["databases"][database]
    assert recorded["format"] == "custom"
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", recorded["snapshot"]["lsn"])
    assert result.metadata["server"]["version"].startswith("15.")
    assert result.metadata["pg_dump_version"].startswith("15.")
    assert recorded["tables"]["sales.orders"]["rows"] == 6000
    assert recorded["tables"]["sales.orders"]["checksum_mode"] == "full"
    assert recorded["tables"]["inventory.moves_2023"]["rows"] > 0
    assert "inventory.moves" not in recorded["tables"]  # the partitioned parent holds no rows
    assert recorded["sequences"]["sales.invoice_numbers"] == {
        "last_value": 1000 + 36 * 7,
        "is_called": True,
    }
    assert recorded["extensions"]["pgcrypto"]
    assert recorded["large_objects"]["count"] == 1
    assert recorded["materialized_views"] == {"sales.customer_totals": {"populated": True}}
    assert role in recorded["tables"]["sales.orders"]["acl"]

    new = cluster.name()
    reader = MemoryReader(sink.streams)
    report = source.restore(context, reader, result.metadata, {"database": new})

    assert report.ok, report.failures
    assert any(check.name == f"{database}: table sales.orders rows" for check in report.checks)
    assert pg_data.describe(postgres_service, new) == pg_data.describe(postgres_service, database)
    assert list(context.scratch.iterdir()) == []


def test_directory_format_with_jobs_drains_files_and_restores_faithfully(
    postgres_service: PostgresService,
    cluster: Cluster,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _role = sample
    source = source_for(postgres_service, password_reference, [database], jobs=3)
    context = context_in(tmp_path)
    sink = MemorySink()

    result = source.backup(context, sink)

    prefix = f"{stream_base(database)}/"
    files = sorted(name.removeprefix(prefix) for name in sink.streams if name.startswith(prefix))
    assert "toc.dat" in files
    assert len([name for name in files if name.endswith(".dat") and name != "toc.dat"]) >= 6
    assert "blobs.toc" in files
    assert list(context.scratch.iterdir()) == []
    recorded = result.metadata["databases"][database]
    assert recorded["format"] == "directory"
    assert recorded["jobs"] == 3
    assert set(recorded["streams"]) == {prefix + name for name in files}

    new = cluster.name()
    report = source.restore(
        context, MemoryReader(sink.streams), result.metadata, {"database": new, "checks": "full"}
    )

    assert report.ok, report.failures
    assert pg_data.describe(postgres_service, new) == pg_data.describe(postgres_service, database)
    assert list(context.scratch.iterdir()) == []


def test_restore_under_the_original_name_recreates_roles_and_grants(
    postgres_service: PostgresService,
    cluster: Cluster,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, role = sample
    source = source_for(postgres_service, password_reference, [database])
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    before = pg_data.describe(postgres_service, database)
    with postgres_service.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        roles_before = {row[0] for row in admin.execute("SELECT rolname FROM pg_roles")}

    try:
        report = source.restore(context, MemoryReader(sink.streams), result.metadata, {})
    finally:
        # globals.sql holds every role of the shared server at backup time: drop the ones
        # other test runs dropped meanwhile, which the replay brought back.
        with postgres_service.connect(autocommit=True) as admin:
            roles_after = {row[0] for row in admin.execute("SELECT rolname FROM pg_roles")}
            for revived in (roles_after - roles_before) & set(result.metadata["globals"]["roles"]):
                if revived != role:
                    admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(revived)))

    assert report.ok, report.failures
    assert pg_data.describe(postgres_service, database) == before
    with postgres_service.connect(database) as connection:
        allowed = connection.execute(
            "SELECT has_table_privilege(%s, 'sales.orders', 'INSERT'), "
            "has_table_privilege(%s, 'sales.customers', 'SELECT')",
            (role, role),
        ).fetchone()
    assert allowed == (True, False)


def test_restore_refuses_an_existing_database_and_changes_nothing(
    postgres_service: PostgresService,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _role = sample
    source = source_for(postgres_service, password_reference, [database])
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    before = pg_data.describe(postgres_service, database)

    with pytest.raises(ConflictError, match=database):
        source.restore(context, MemoryReader(sink.streams), result.metadata, {})

    assert pg_data.describe(postgres_service, database) == before


def test_restore_with_a_new_owner_gives_every_table_to_that_role(
    postgres_service: PostgresService,
    cluster: Cluster,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _role = sample
    owner = cluster.role("sr_pg_owner")
    source = source_for(postgres_service, password_reference, [database])
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    new = cluster.name()

    report = source.restore(
        context,
        MemoryReader(sink.streams),
        result.metadata,
        {"database": new, "owner": owner, "roles": False},
    )

    assert report.ok, report.failures
    with postgres_service.connect(new) as connection:
        owners = connection.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('sales', 'inventory')"
        ).fetchall()
    assert owners == [(owner,)]


# -- restore test --------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_restore_test_passes_on_a_good_backup_and_drops_its_scratch_database(
    postgres_service: PostgresService,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
    jobs: int,
) -> None:
    database, _role = sample
    source = source_for(postgres_service, password_reference, [database], jobs=jobs)
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    scratch_before = scratch_databases(postgres_service)

    report = source.restore_test(context, MemoryReader(sink.streams), result.metadata)

    assert report.ok, report.failures
    names = {check.name for check in report.checks}
    assert f"{database}: table sales.orders checksum (full)" in names
    assert f"{database}: table sales.orders privileges" in names
    assert f"{database}: sequence sales.invoice_numbers last value" in names
    assert f"{database}: large objects checksum" in names
    assert f"{database}: materialized view sales.customer_totals populated" in names
    assert scratch_databases(postgres_service) <= scratch_before
    assert list(context.scratch.iterdir()) == []


def _tamper(data: bytes) -> bytes:
    """Change one order's note inside an uncompressed pg_dump archive (same length)."""
    marker = pg_data.MARKER.encode()
    assert data.count(marker) == 1
    return data.replace(marker, marker[:-4] + b"9999")


@pytest.mark.parametrize("jobs", [1, 2])
def test_restore_test_fails_naming_the_table_whose_dumped_data_was_altered(
    postgres_service: PostgresService,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
    jobs: int,
) -> None:
    database, _role = sample
    source = source_for(postgres_service, password_reference, [database], jobs=jobs)
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    streams = dict(sink.streams)
    (altered,) = [name for name, data in streams.items() if pg_data.MARKER.encode() in data]
    streams[altered] = _tamper(streams[altered])
    scratch_before = scratch_databases(postgres_service)

    report = source.restore_test(context, MemoryReader(streams), result.metadata)

    assert not report.ok
    failed = {check.name for check in report.failures}
    assert failed == {
        f"stream {altered} sha256",
        f"{database}: table sales.orders checksum (full)",
    }
    assert scratch_databases(postgres_service) <= scratch_before


@pytest.mark.parametrize("jobs", [1, 2])
def test_restore_test_reports_a_broken_archive_as_a_failed_check_and_cleans_up(
    postgres_service: PostgresService,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
    jobs: int,
) -> None:
    database, _role = sample
    source = source_for(
        postgres_service, password_reference, [database], jobs=jobs, compression="6"
    )
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    streams = dict(sink.streams)
    biggest = max(streams, key=lambda name: len(streams[name]))
    data = bytearray(streams[biggest])
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    streams[biggest] = bytes(data)
    scratch_before = scratch_databases(postgres_service)

    report = source.restore_test(context, MemoryReader(streams), result.metadata)

    assert not report.ok
    assert f"{database}: pg_restore" in {check.name for check in report.failures}
    assert scratch_databases(postgres_service) <= scratch_before
    assert list(context.scratch.iterdir()) == []


@pytest.mark.parametrize("mode", ["sampled", "off"])
def test_checksum_modes_are_recorded_and_restore_tests_pass(
    postgres_service: PostgresService,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
    mode: str,
) -> None:
    database, _role = sample
    source = source_for(
        postgres_service, password_reference, [database], checksum=mode, sample_rows=25
    )
    context = context_in(tmp_path)
    sink = MemorySink()

    result = source.backup(context, sink)
    tables = result.metadata["databases"][database]["tables"]

    if mode == "sampled":
        assert tables["sales.orders"]["checksum_mode"] == "sampled"
        assert tables["sales.orders"]["sample_rows"] == 25
        assert tables["public.audit_log"]["checksum_mode"] == "off"  # no primary key
    else:
        assert all("checksum" not in table for table in tables.values())
    report = source.restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures


def test_auto_mode_samples_tables_above_the_size_limit(
    postgres_service: PostgresService,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _role = sample
    source = source_for(
        postgres_service, password_reference, [database], checksum_full_limit=64 * 1024
    )
    result = source.backup(context_in(tmp_path), MemorySink())
    tables = result.metadata["databases"][database]["tables"]
    assert tables["sales.orders"]["checksum_mode"] == "sampled"
    assert tables["inventory.moves_2024"]["checksum_mode"] == "full"


# -- scratch cleanup on failure ----------------------------------------------------------------


class _StorageFull(MemorySink):
    def __init__(self) -> None:
        super().__init__(on_write=self._refuse)

    def _refuse(self, name: str, data: bytes) -> None:
        if name != "globals.sql":
            raise InsufficientStorageError("the vault is full")


def test_directory_dump_cleans_its_scratch_folder_when_the_sink_fails(
    postgres_service: PostgresService,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _role = sample
    source = source_for(postgres_service, password_reference, [database], jobs=2)
    context = context_in(tmp_path)

    with pytest.raises(InsufficientStorageError):
        source.backup(context, _StorageFull())

    assert list(context.scratch.iterdir()) == []


def test_directory_dump_cleans_its_scratch_folder_when_cancelled(
    postgres_service: PostgresService,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _role = sample
    source = source_for(postgres_service, password_reference, [database], jobs=2)
    context = context_in(tmp_path)

    def cancel_on_first_table(name: str, data: bytes) -> None:
        if name != "globals.sql":
            context.cancel.set()

    with pytest.raises(AbortedError):
        source.backup(context, MemorySink(on_write=cancel_on_first_table))

    assert list(context.scratch.iterdir()) == []


# -- globals without superuser -----------------------------------------------------------------


def test_globals_fall_back_to_no_role_passwords_without_pg_authid_access(
    postgres_service: PostgresService,
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    secret = "limited-pass-" + os.urandom(4).hex()
    user = cluster.role("sr_pg_limited", options=f"LOGIN PASSWORD '{secret}'")
    database = cluster.name("sr_pg_limited_db")
    with postgres_service.connect(autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(user)
            )
        )
    with postgres_service.connect(database, autocommit=True) as connection:
        connection.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(user)))
        connection.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        connection.execute("INSERT INTO notes SELECT i, 'n' || i FROM generate_series(1, 50) i")
    monkeypatch.setenv("STRONGROOM_TEST_LIMITED_PASSWORD", secret)
    settings = resource(postgres_service, "env:STRONGROOM_TEST_LIMITED_PASSWORD", [database])
    settings = settings.model_copy(update={"user": user})
    source = PostgresSource(settings)
    context = context_in(tmp_path)
    sink = MemorySink()

    result = source.backup(context, sink)

    assert not result.partial
    assert result.metadata["globals"]["role_passwords"] is False
    assert "SCRAM-SHA-256" not in sink.streams["globals.sql"].decode()
    assert result.metadata["databases"][database]["tables"]["public.notes"]["rows"] == 50
    with pytest.raises(AccessDeniedError, match="permission denied to create database"):
        source.restore_test(context, MemoryReader(sink.streams), result.metadata)
    with postgres_service.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(user)))
    report = source.restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures


# -- describe ------------------------------------------------------------------------------------


def test_describe_lists_databases_without_templates_and_exclusions(
    postgres_service: PostgresService, cluster: Cluster, password_reference: str, tmp_path: Path
) -> None:
    kept = cluster.database()
    excluded = cluster.database()
    settings = resource(postgres_service, password_reference, [], exclude_databases=[excluded])
    source = PostgresSource(settings)
    assert isinstance(source, Source)
    assert source.type_name == "postgres"
    description = source.describe(context_in(tmp_path))

    assert stream_base(kept) in description.parts
    assert stream_base(excluded) not in description.parts
    assert stream_base("template0") not in description.parts
    assert description.tools["server"].startswith("15.")
    assert description.tools["pg_dump"].startswith("15.")


# -- errors ----------------------------------------------------------------------------------------


def test_wrong_password_is_access_denied(
    postgres_service: PostgresService,
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    database = cluster.database()
    monkeypatch.setenv("STRONGROOM_TEST_WRONG_PASSWORD", "not-the-password")
    source = PostgresSource(
        resource(postgres_service, "env:STRONGROOM_TEST_WRONG_PASSWORD", [database])
    )
    with pytest.raises(AccessDeniedError) as raised:
        source.backup(context_in(tmp_path), MemorySink())
    assert "password authentication failed" in str(raised.value)
    assert not raised.value.retryable
    assert "not-the-password" not in str(raised.value)


def test_unreachable_port_is_a_retryable_network_error(
    postgres_service: PostgresService, password_reference: str, tmp_path: Path
) -> None:
    settings = resource(postgres_service, password_reference, ["postgres"]).model_copy(
        update={"port": 1}
    )
    with pytest.raises(NetworkError) as raised:
        PostgresSource(settings).backup(context_in(tmp_path), MemorySink())
    assert raised.value.retryable


def test_missing_database_is_not_found(
    postgres_service: PostgresService, password_reference: str, tmp_path: Path
) -> None:
    missing = unique_name("sr_pg_missing")
    source = PostgresSource(resource(postgres_service, password_reference, [missing]))
    with pytest.raises(NotFoundError, match=missing):
        source.backup(context_in(tmp_path), MemorySink())


def test_a_missing_database_among_others_is_a_failed_part(
    postgres_service: PostgresService, cluster: Cluster, password_reference: str, tmp_path: Path
) -> None:
    present = cluster.database()
    missing = unique_name("sr_pg_missing")
    source = PostgresSource(resource(postgres_service, password_reference, [present, missing]))
    result = source.backup(context_in(tmp_path), MemorySink())
    assert result.partial
    assert set(result.failed_parts) == {stream_base(missing)}
    assert present in result.metadata["databases"]


def test_missing_tools_name_the_debian_package(
    postgres_service: PostgresService,
    password_reference: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    source = PostgresSource(resource(postgres_service, password_reference, ["postgres"]))
    with pytest.raises(ToolError) as raised:
        source.backup(context_in(tmp_path), MemorySink())
    assert "pg_dump" in str(raised.value)
    assert "postgresql-client" in raised.value.hint
    assert not raised.value.retryable


def test_a_pg_dump_older_than_the_server_is_refused_with_a_hint(
    postgres_service: PostgresService, password_reference: str, tmp_path: Path
) -> None:
    bindir = tmp_path / "old-client"
    bindir.mkdir()
    old = bindir / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 13.4'\n")
    old.chmod(0o755)
    source = PostgresSource(
        resource(postgres_service, password_reference, ["postgres"]), bindir=bindir
    )
    with pytest.raises(ToolError) as raised:
        source.backup(context_in(tmp_path), MemorySink())
    assert "server version mismatch" in str(raised.value)
    assert "postgresql-client-15" in raised.value.hint
    assert not raised.value.retryable


def test_pg_dump_mismatch_message_maps_to_a_permanent_tool_error() -> None:
    # The text pg_dump 15 prints against a 16 server (no second major version runs here).
    stderr = (
        "pg_dump: error: aborting because of server version mismatch\n"
        "pg_dump: detail: server version: 16.4; pg_dump version: 15.18"
    )
    error = classify_text(stderr, "pg_dump")
    assert isinstance(error, ToolError)
    assert not error.retryable
    assert "postgresql-client" in error.hint


def test_compressed_archives_still_round_trip(
    postgres_service: PostgresService,
    cluster: Cluster,
    sample: tuple[str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _role = sample
    source = source_for(postgres_service, password_reference, [database], jobs=2, compression="6")
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    compressed = [name for name in sink.streams if name.endswith(".dat.gz")]
    assert compressed
    assert zlib.decompress(sink.streams[compressed[0]], wbits=31)
    report = source.restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures


# -- globals replay --------------------------------------------------------------------------------


def _globals_only(script: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    data = script.encode()
    metadata = {
        "format": "strongroom-postgres",
        "globals": {
            "stream": "globals.sql",
            "roles": role_names(script),
            "role_passwords": True,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        "databases": {},
    }
    return metadata, {"globals.sql": data}


def test_globals_replay_lets_existing_roles_through_and_still_applies_their_attributes(
    postgres_service: PostgresService, cluster: Cluster, password_reference: str, tmp_path: Path
) -> None:
    existing = cluster.role()
    fresh = unique_name("sr_pg_fresh")
    cluster.roles.append(fresh)
    metadata, streams = _globals_only(
        f"CREATE ROLE {existing};\nALTER ROLE {existing} WITH NOLOGIN CONNECTION LIMIT 7;\n"
        f'CREATE ROLE "{fresh}";\nALTER ROLE "{fresh}" WITH LOGIN;\n'
        f'GRANT {existing} TO "{fresh}";\n'
        "CREATE TABLESPACE sr_never LOCATION '/nonexistent/strongroom';\n"
    )
    source = PostgresSource(resource(postgres_service, password_reference, []))

    report = source.restore(context_in(tmp_path), MemoryReader(streams), metadata, {})

    assert report.ok, report.failures
    assert any("tablespace" in note for note in report.notes)
    with postgres_service.connect() as connection:
        found = connection.execute(
            "SELECT rolname, rolconnlimit, rolcanlogin, pg_has_role(rolname, %s, 'MEMBER') "
            "FROM pg_roles WHERE rolname IN (%s, %s) ORDER BY rolname = %s",
            (existing, existing, fresh, fresh),
        ).fetchall()
    assert found == [(existing, 7, False, True), (fresh, -1, True, True)]


def test_globals_replay_stops_at_any_other_error(
    postgres_service: PostgresService, cluster: Cluster, password_reference: str, tmp_path: Path
) -> None:
    existing = cluster.role()
    missing = unique_name("sr_pg_nobody")
    metadata, streams = _globals_only(
        f"CREATE ROLE {existing};\nGRANT {missing} TO {existing};\n"
        f"ALTER ROLE {existing} WITH CONNECTION LIMIT 3;\n"
    )
    source = PostgresSource(resource(postgres_service, password_reference, []))

    with pytest.raises(ToolError, match=missing):
        source.restore(context_in(tmp_path), MemoryReader(streams), metadata, {})

    with postgres_service.connect() as connection:
        limit = connection.execute(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (existing,)
        ).fetchone()
    assert limit == (-1,)  # one transaction: nothing of the script was applied


def test_prepare_globals_rewrites_create_role_and_filters_tablespaces_and_restrict() -> None:
    script = (
        "\\restrict abc\n"
        'CREATE ROLE "odd ""name""";\n'
        "CREATE ROLE plain;\n"
        "CREATE TABLESPACE ts OWNER plain LOCATION '/srv/ts';\n"
        "GRANT CREATE ON TABLESPACE ts TO plain;\n"
        "\\unrestrict abc\n"
    )
    prepared, notes = prepare_globals(script, tablespaces=False, keep_restrict=False)
    assert prepared.splitlines() == [
        'DO $strongroom$ BEGIN CREATE ROLE "odd ""name"""; '
        "EXCEPTION WHEN duplicate_object THEN NULL; END $strongroom$;",
        "DO $strongroom$ BEGIN CREATE ROLE plain; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $strongroom$;",
    ]
    assert notes and "2 tablespace" in notes[0]
    kept, _ = prepare_globals(script, tablespaces=True, keep_restrict=True)
    assert "\\restrict abc" in kept and "CREATE TABLESPACE ts" in kept
    assert role_names(script) == ['odd "name"', "plain"]
    assert psql_knows_restrict((15, 14)) and not psql_knows_restrict((15, 13))
    assert psql_knows_restrict((18, 0)) and not psql_knows_restrict((12, 22))


def test_restore_refuses_metadata_of_a_dry_run_or_another_source(
    postgres_service: PostgresService, password_reference: str, tmp_path: Path
) -> None:
    source = PostgresSource(resource(postgres_service, password_reference, []))
    reader = MemoryReader({})
    with pytest.raises(ConfigError, match="dry-run"):
        source.restore_test(
            context_in(tmp_path), reader, {"format": "strongroom-postgres", "dry_run": True}
        )
    with pytest.raises(ConfigError, match="postgres source"):
        source.restore(context_in(tmp_path), reader, {"format": "strongroom-mysql"}, {})

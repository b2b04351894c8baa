"""The ``mysql`` source against the real MariaDB 10.11 of dev/services.

Each test builds its own databases and accounts (unique names) and drops them afterwards;
the server is shared with other test runs, so the source is always given an explicit
database list, and account restores name the accounts they replay. Fidelity is judged by
:func:`tests.integration.sources.my_data.describe`, which reads databases with plain SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.config.resources import MysqlResource
from strongroom.errors import (
    AccessDeniedError,
    ConflictError,
    NetworkError,
    NotFoundError,
    ToolError,
)
from strongroom.sources import gateway
from strongroom.sources.base import Source, SourceContext
from strongroom.sources.mysql import facts as mysql_facts
from strongroom.sources.mysql.dump import (
    SANDBOX_PREFIX,
    coordinates,
    filter_dump,
    map_grants,
    stream_dump,
)
from strongroom.sources.mysql.server import MyServer, classifier
from strongroom.sources.mysql.source import MysqlSource, stream_name
from strongroom.sources.tool_streams import ToolRunner
from tests.integration.sources import my_data
from tests.support.services import MariaDBService, unique_name
from tests.support.source_fakes import MemoryReader, MemorySink

pytestmark = pytest.mark.integration

PASSWORD_VARIABLE = "STRONGROOM_TEST_SOURCE_MY_PASSWORD"


class Server:
    """Creates databases and accounts on the shared server and drops them all at the end."""

    def __init__(self, service: MariaDBService) -> None:
        self.service = service
        self.databases: list[str] = []
        self.accounts: list[str] = []
        self.roles: list[str] = []

    def execute(self, statement: str, args: Any = None) -> list[tuple[Any, ...]]:
        connection = self.service.connect(autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, args)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def name(self, prefix: str = "sr_my") -> str:
        name = unique_name(prefix)
        self.databases.append(name)
        return name

    def account(self) -> str:
        name = unique_name("sr_my_user")
        self.accounts.append(name)
        return name

    def role(self) -> str:
        name = unique_name("sr_my_role")
        self.roles.append(name)
        return name

    def drop_all(self) -> None:
        for name in self.databases:
            self.execute(f"DROP DATABASE IF EXISTS `{name}`")
        for account in self.accounts:
            self.execute(f"DROP USER IF EXISTS '{account}'@'%'")
        for role in self.roles:
            self.execute(f"DROP ROLE IF EXISTS `{role}`")


@pytest.fixture
def server(mariadb_service: MariaDBService) -> Iterator[Server]:
    created = Server(mariadb_service)
    try:
        yield created
    finally:
        created.drop_all()


@pytest.fixture
def password_reference(mariadb_service: MariaDBService, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_VARIABLE, mariadb_service.password)
    return f"env:{PASSWORD_VARIABLE}"


@pytest.fixture
def sample(server: Server) -> tuple[str, str, str]:
    """A populated database, an account and a role with grants on it."""
    database, account, role = server.name(), server.account(), server.role()
    my_data.populate(server.service, database, account, role)
    return database, account, role


def resource(
    service: MariaDBService, password: str | None, databases: list[str], **extra: Any
) -> MysqlResource:
    return MysqlResource.model_validate(
        {
            "type": "mysql",
            "host": service.host,
            "port": service.port,
            "user": service.user,
            "password": password,
            "databases": databases,
            **extra,
        }
    )


def context_in(tmp_path: Path) -> SourceContext:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return SourceContext(scratch=scratch)


def scratch_databases(server: Server) -> set[str]:
    rows = server.execute("SHOW DATABASES LIKE 'strongroom\\_rt\\_%'")
    return {row[0] for row in rows}


def backed_up(
    service: MariaDBService, password: str, database: str, tmp_path: Path, **options: Any
) -> tuple[MysqlSource, SourceContext, MemorySink, dict[str, Any]]:
    source = MysqlSource(resource(service, password, [database]), **options)
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    assert not result.partial, result.failed_parts
    return source, context, sink, result.metadata


# -- backup and restore ------------------------------------------------------------------------


def test_backup_streams_one_dump_per_database_with_facts_and_binlog_position(
    mariadb_service: MariaDBService,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, account, role = sample
    _source, context, sink, metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )

    assert sorted(sink.streams) == sorted(["users.sql", stream_name(database)])
    dump = sink.streams[stream_name(database)]
    assert dump.startswith(SANDBOX_PREFIX)
    assert b"CREATE DATABASE" not in dump
    assert b"CREATE DEFINER=" in dump and b" EVENT `nightly_cleanup`" in dump
    users = sink.streams["users.sql"].decode()
    assert f"CREATE USER IF NOT EXISTS `{account}`@`%`" in users
    assert f"CREATE ROLE IF NOT EXISTS `{role}`" in users
    assert "`root`@" not in users
    entry = metadata["databases"][database]
    assert entry["sandbox_line"] is True
    assert entry["binlog"]["file"].startswith("mariadb-bin.")
    assert entry["binlog"]["position"] > 0
    assert entry["consistency"] in ("exact", "compared")
    assert entry.get("changed_during_backup", []) == []
    assert entry["tables"]["orders"]["rows"] == 5000
    assert isinstance(entry["tables"]["orders"]["checksum"], int)
    assert entry["tables"]["counters"]["engine"] == "MyISAM"
    assert entry["views"] == ["big_orders"]
    assert entry["routines"] == ["FUNCTION with_tax", "PROCEDURE add_order"]
    assert entry["triggers"] == ["orders_audit"]
    assert entry["events"] == ["nightly_cleanup"]
    assert f"{account}@%" in metadata["users"]["accounts"]
    assert metadata["server"]["version"].startswith("10.11")
    assert list(context.scratch.iterdir()) == []


def test_restore_into_a_new_name_is_faithful(
    mariadb_service: MariaDBService,
    server: Server,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _account, _role = sample
    source, context, sink, metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )
    new = server.name("sr_my_restored")

    report = source.restore(
        context,
        MemoryReader(sink.streams),
        metadata,
        {"database": new, "users": False, "checks": "full"},
    )

    assert report.ok, report.failures
    assert f"{database}: table attachments checksum" in {check.name for check in report.checks}
    assert my_data.describe(mariadb_service, new) == my_data.describe(mariadb_service, database)


def test_restore_replays_named_accounts_with_grants_following_a_renamed_database(
    mariadb_service: MariaDBService,
    server: Server,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, account, role = sample
    source, context, sink, metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )
    expected = my_data.grants(mariadb_service, account, role)
    server.execute(f"DROP USER '{account}'@'%'")
    server.execute(f"DROP ROLE `{role}`")
    new = server.name("sr_my_renamed")

    report = source.restore(
        context,
        MemoryReader(sink.streams),
        metadata,
        {"database_map": {database: new}, "users": [f"{account}@%", role]},
    )

    assert report.ok, report.failures
    renamed = {
        kind: sorted(line.replace(f"`{database}`", f"`{new}`") for line in lines)
        for kind, lines in expected.items()
    }
    assert my_data.grants(mariadb_service, account, role) == renamed
    connection = mariadb_service.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT authentication_string = PASSWORD(%s) FROM mysql.user "
                "WHERE User = %s AND Host = '%%'",
                (f"pw-{account}", account),
            )
            assert cursor.fetchone() == (1,)
    finally:
        connection.close()


def test_restore_refuses_an_existing_database(
    mariadb_service: MariaDBService,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _account, _role = sample
    source, context, sink, metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )
    before = my_data.describe(mariadb_service, database)
    with pytest.raises(ConflictError, match=database):
        source.restore(context, MemoryReader(sink.streams), metadata, {"users": False})
    assert my_data.describe(mariadb_service, database) == before


# -- restore test ------------------------------------------------------------------------------


def test_restore_test_passes_on_a_good_backup_and_drops_its_scratch_database(
    mariadb_service: MariaDBService,
    server: Server,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _account, _role = sample
    source, context, sink, metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )
    before = scratch_databases(server)

    report = source.restore_test(context, MemoryReader(sink.streams), metadata)

    assert report.ok, report.failures
    names = {check.name for check in report.checks}
    assert f"{database}: table orders checksum" in names
    assert f"{database}: table attachments rows" in names
    assert f"{database}: events" in names
    assert scratch_databases(server) <= before


def test_restore_test_fails_naming_the_table_whose_dumped_data_was_altered(
    mariadb_service: MariaDBService,
    server: Server,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _account, _role = sample
    source, context, sink, metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )
    streams = dict(sink.streams)
    name = stream_name(database)
    marker = my_data.MARKER.encode()
    assert streams[name].count(marker) == 1
    streams[name] = streams[name].replace(marker, marker[:-4] + b"9999")
    before = scratch_databases(server)

    report = source.restore_test(context, MemoryReader(streams), metadata)

    assert not report.ok
    assert {check.name for check in report.failures} == {
        f"stream {name} sha256",
        f"{database}: table orders checksum",
    }
    assert scratch_databases(server) <= before


def test_restore_test_reports_a_dump_the_client_rejects(
    mariadb_service: MariaDBService,
    server: Server,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _account, _role = sample
    source, context, sink, metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )
    streams = dict(sink.streams)
    name = stream_name(database)
    streams[name] = streams[name].replace(b"INSERT INTO `orders`", b"INSERT INTO `orders` broken")
    before = scratch_databases(server)

    report = source.restore_test(context, MemoryReader(streams), metadata)

    assert not report.ok
    assert f"{database}: load dump" in {check.name for check in report.failures}
    assert scratch_databases(server) <= before


def test_a_write_between_the_two_snapshots_is_detected_and_tolerated_by_the_restore_test(
    mariadb_service: MariaDBService,
    server: Server,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database, _account, _role = sample
    original = mysql_facts.start_snapshot
    calls: list[int] = []

    def start_then_write(connection: Any) -> Any:
        # A commit after the source's snapshot and before the dump tool's: the race that
        # the binary log positions reveal.
        position = original(connection)
        if not calls:
            server.execute(f"INSERT INTO `{database}`.audit_log VALUES (NOW(), 'in between')")
        calls.append(1)
        return position

    monkeypatch.setattr(mysql_facts, "start_snapshot", start_then_write)
    source = MysqlSource(resource(mariadb_service, password_reference, [database]))
    context = context_in(tmp_path)
    sink = MemorySink()
    result = source.backup(context, sink)
    entry = result.metadata["databases"][database]

    assert entry["consistency"] == "compared"
    assert entry["snapshot_binlog"]["position"] < entry["binlog"]["position"]
    assert entry["changed_during_backup"] == ["audit_log"]
    assert b"in between" in sink.streams[stream_name(database)]
    report = source.restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures
    assert f"{database}: table orders checksum" in {check.name for check in report.checks}
    assert any("audit_log" in note for note in report.notes)


def test_a_quiet_database_is_dumped_with_exactly_matching_facts(
    mariadb_service: MariaDBService,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _account, _role = sample
    written = threading.Event()
    server_for_writes = Server(mariadb_service)

    def write_after_the_dump_started(name: str, data: bytes) -> None:
        # Both snapshots exist once the dump writes: this row is in neither.
        if name.startswith("db/") and not written.is_set():
            written.set()
            server_for_writes.execute(
                f"INSERT INTO `{database}`.audit_log VALUES (NOW(), 'after both snapshots')"
            )

    source = MysqlSource(resource(mariadb_service, password_reference, [database]))
    context = context_in(tmp_path)
    sink = MemorySink(on_write=write_after_the_dump_started)
    result = source.backup(context, sink)
    entry = result.metadata["databases"][database]

    if entry["snapshot_binlog"] == {k: entry["binlog"][k] for k in ("file", "position")}:
        assert entry["consistency"] == "exact"
    else:  # another test run committed on the shared server in between
        assert entry["consistency"] == "compared"
    assert b"after both snapshots" not in sink.streams[stream_name(database)]
    assert entry["tables"]["audit_log"]["rows"] == 1500
    report = source.restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures


# -- the sandbox line and events ----------------------------------------------------------------


def _client_without_sandbox(folder: Path) -> Path:
    """A bindir whose ``mariadb`` behaves like a MySQL client: no --sandbox, rejects the line."""
    folder.mkdir()
    (folder / "mariadb-dump").symlink_to(gateway.find_tool("mariadb-dump"))
    real = gateway.find_tool("mariadb")
    wrapper = folder / "mariadb"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" --help "*)\n'
        f"  {real} --help | grep -v -e '--sandbox' -e '^sandbox '; exit 0;;\n"
        "esac\n"
        "IFS= read -r first\n"
        "case \"$first\" in *'\\-'*)\n"
        "  echo \"ERROR at line 1: Unknown command '\\\\-'.\" >&2; exit 1;;\n"
        "esac\n"
        f'{{ printf \'%s\\n\' "$first"; cat; }} | exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return folder


def test_a_client_without_sandbox_support_gets_the_dump_without_its_sandbox_line(
    mariadb_service: MariaDBService,
    server: Server,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _account, _role = sample
    _source, context, sink, metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )
    bindir = _client_without_sandbox(tmp_path / "mysql-like")
    settings = resource(mariadb_service, password_reference, [database])
    old_client = MysqlSource(settings, bindir=bindir)
    dump = sink.streams[stream_name(database)]
    server_settings = MyServer.from_settings(settings, connect_timeout=5, bindir=bindir)

    with pytest.raises(ToolError) as raised:  # what a MySQL client does with the line
        gateway.run(
            [str(bindir / "mariadb"), *server_settings.client_options(), "--batch"],
            env=server_settings.environment(),
            stdin=_file_with(tmp_path / "raw.sql", dump),
            classify=classifier("loading the raw dump"),
        )
    assert "sandbox" in raised.value.hint

    new = server.name("sr_my_old_client")
    report = old_client.restore(
        context, MemoryReader(sink.streams), metadata, {"database": new, "users": False}
    )
    assert report.ok, report.failures
    assert my_data.describe(mariadb_service, new) == my_data.describe(mariadb_service, database)
    test_report = old_client.restore_test(context, MemoryReader(sink.streams), metadata)
    assert test_report.ok, test_report.failures


def _file_with(path: Path, data: bytes) -> Any:
    path.write_bytes(data)
    return path.open("rb")


def test_filter_dump_strips_the_sandbox_line_and_disables_events_in_any_block_size(
    mariadb_service: MariaDBService,
    server: Server,
    sample: tuple[str, str, str],
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, _account, _role = sample
    _source, _context, sink, _metadata = backed_up(
        mariadb_service, password_reference, database, tmp_path
    )
    dump = sink.streams[stream_name(database)]
    whole = b"".join(filter_dump([dump], strip_sandbox=True, disable_events=True))
    for size in (1, 7, 4096):
        blocks = [dump[index : index + size] for index in range(0, len(dump), size)]
        pieces = b"".join(filter_dump(blocks, strip_sandbox=True, disable_events=True))
        assert pieces == whole
    assert not whole.startswith(b"/*M!999999")
    assert whole == dump.partition(b"\n")[2].replace(b"PRESERVE ENABLE DO", b"PRESERVE DISABLE DO")
    untouched = b"".join(filter_dump([dump], strip_sandbox=False, disable_events=False))
    assert untouched == dump

    copy = server.name("sr_my_events")
    server.execute(f"CREATE DATABASE `{copy}`")
    settings = MyServer.from_settings(
        resource(mariadb_service, password_reference, []), connect_timeout=5, bindir=None
    )
    gateway.run(
        [gateway.find_tool("mariadb"), *settings.client_options(), f"--database={copy}"],
        env=settings.environment(),
        stdin=_file_with(tmp_path / "filtered.sql", whole),
    )
    status = server.execute(
        "SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", (copy,)
    )
    assert status == [("nightly_cleanup", "DISABLED")]


# -- errors --------------------------------------------------------------------------------------


def test_wrong_password_is_access_denied(
    mariadb_service: MariaDBService, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STRONGROOM_TEST_MY_WRONG", "not-the-password")
    source = MysqlSource(resource(mariadb_service, "env:STRONGROOM_TEST_MY_WRONG", ["mysql"]))
    with pytest.raises(AccessDeniedError, match="1045"):
        source.backup(context_in(tmp_path), MemorySink())


def test_unreachable_port_is_a_retryable_network_error(
    mariadb_service: MariaDBService, password_reference: str, tmp_path: Path
) -> None:
    settings = resource(mariadb_service, password_reference, ["x"]).model_copy(update={"port": 1})
    with pytest.raises(NetworkError) as raised:
        MysqlSource(settings).backup(context_in(tmp_path), MemorySink())
    assert raised.value.retryable


def test_missing_database_is_not_found(
    mariadb_service: MariaDBService, password_reference: str, tmp_path: Path
) -> None:
    missing = unique_name("sr_my_missing")
    source = MysqlSource(resource(mariadb_service, password_reference, [missing]))
    with pytest.raises(NotFoundError, match=missing):
        source.backup(context_in(tmp_path), MemorySink())


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"password": "not-the-password"}, AccessDeniedError, "1045"),
        ({"port": 1}, NetworkError, "2002"),
        ({"database": "sr_my_missing_database"}, NotFoundError, "1049"),
    ],
)
def test_dump_tool_errors_are_typed_by_their_code(
    mariadb_service: MariaDBService,
    password_reference: str,
    tmp_path: Path,
    change: dict[str, Any],
    error: type[Exception],
    code: str,
) -> None:
    settings = MyServer.from_settings(
        resource(mariadb_service, password_reference, []), connect_timeout=5, bindir=None
    )
    fields = {**settings.__dict__, **{k: v for k, v in change.items() if k != "database"}}
    target = MyServer(**fields)
    argv = [
        target.tool(("mariadb-dump",)),
        *target.client_options(),
        "--",
        change.get("database", "mysql"),
    ]
    context = context_in(tmp_path)
    tools = ToolRunner(target, classifier, context.cancel, 30)
    with pytest.raises(error, match=code):
        stream_dump(argv, tools, "dumping", MemorySink(), "db/x.sql", context)


def test_missing_tools_name_the_debian_package(
    mariadb_service: MariaDBService,
    password_reference: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    source = MysqlSource(resource(mariadb_service, password_reference, ["mysql"]))
    with pytest.raises(ToolError) as raised:
        source.backup(context_in(tmp_path), MemorySink())
    assert "mariadb-dump" in str(raised.value)
    assert "mariadb-client" in raised.value.hint


def test_describe_lists_databases_without_system_ones(
    mariadb_service: MariaDBService, server: Server, password_reference: str, tmp_path: Path
) -> None:
    kept, excluded = server.name(), server.name()
    server.execute(f"CREATE DATABASE `{kept}`")
    server.execute(f"CREATE DATABASE `{excluded}`")
    settings = resource(mariadb_service, password_reference, [], exclude_databases=[excluded])
    source = MysqlSource(settings)
    assert isinstance(source, Source)
    assert source.type_name == "mysql"
    description = source.describe(context_in(tmp_path))
    assert stream_name(kept) in description.parts
    assert stream_name(excluded) not in description.parts
    assert stream_name("mysql") not in description.parts
    assert description.tools["server"].startswith("10.11")


# -- pure helpers ----------------------------------------------------------------------------------


def test_accounts_script_selection_phases_and_renamed_grants() -> None:
    script = (
        "-- strongroom: accounts\n"
        "-- account: app_role\nCREATE ROLE IF NOT EXISTS `app_role`;\n"
        "-- account: app@%\nCREATE USER IF NOT EXISTS `app`@`%` IDENTIFIED BY PASSWORD '*AB';\n"
        "-- account: other@localhost\nCREATE USER IF NOT EXISTS `other`@`localhost`;\n"
        "-- strongroom: grants\n"
        "-- account: app_role\nGRANT INSERT ON `shop`.`orders` TO `app_role`;\n"
        "-- account: app@%\nGRANT SELECT ON `shop`.* TO `app`@`%`;\n"
        "GRANT SELECT ON `shopping`.* TO `app`@`%`;\n"
        "-- account: other@localhost\nGRANT ALL ON `shop`.* TO `other`@`localhost`;\n"
    )
    chosen = mysql_facts.select_accounts(script, {"app@%", "app_role"})
    creations, grants = mysql_facts.split_phases(map_grants(chosen, {"shop": "shop_copy"}))
    assert "other" not in creations + grants
    assert "CREATE ROLE IF NOT EXISTS `app_role`" in creations and "GRANT" not in creations
    assert grants.splitlines()[1:] == [
        "GRANT INSERT ON `shop_copy`.`orders` TO `app_role`;",
        "-- account: app@%",
        "GRANT SELECT ON `shop_copy`.* TO `app`@`%`;",
        "GRANT SELECT ON `shopping`.* TO `app`@`%`;",
    ]
    assert mysql_facts.select_accounts(script, None) == script


def test_binlog_coordinates_are_read_from_mariadb_and_mysql_dump_comments() -> None:
    mariadb_head = (
        b"-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000003', MASTER_LOG_POS=4711;\n"
    )
    mariadb_tail = b"-- SET GLOBAL gtid_slave_pos='0-1-52';\n"
    assert coordinates(mariadb_head, mariadb_tail) == {
        "file": "mariadb-bin.000003",
        "position": 4711,
        "gtid": "0-1-52",
    }
    mysql_head = (
        b"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5';\n"
        b"-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;\n"
    )
    assert coordinates(mysql_head, b"") == {
        "file": "binlog.000002",
        "position": 157,
        "gtid": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
    }
    assert coordinates(b"-- no binary log\n", b"") is None


def test_a_grant_that_fails_is_a_failed_check_and_the_other_grants_still_apply(
    mariadb_service: MariaDBService,
    server: Server,
    password_reference: str,
    tmp_path: Path,
) -> None:
    database, role, left_out = server.name(), server.role(), server.role()
    server.execute(f"CREATE DATABASE `{database}`")
    server.execute(f"CREATE TABLE `{database}`.notes (id INT PRIMARY KEY)")
    server.execute(f"INSERT INTO `{database}`.notes VALUES (1), (2)")
    server.execute(f"CREATE ROLE `{role}`")
    server.execute(f"CREATE ROLE `{left_out}`")
    server.execute(f"GRANT `{left_out}` TO `{role}`")
    server.execute(f"GRANT SELECT ON `{database}`.* TO `{role}`")
    source = MysqlSource(resource(mariadb_service, password_reference, [database]))
    context = context_in(tmp_path)
    sink = MemorySink()
    metadata = source.backup(context, sink).metadata
    server.execute(f"DROP ROLE `{role}`")
    server.execute(f"DROP ROLE `{left_out}`")
    server.execute(f"DROP DATABASE `{database}`")

    # Only the one role is replayed: granting it the role left out must fail.
    report = source.restore(context, MemoryReader(sink.streams), metadata, {"users": [role]})

    assert [check.name for check in report.failures] == ["users.sql: grants replayed"]
    assert left_out in str(report.failures[0].actual)
    assert server.execute(f"SELECT COUNT(*) FROM `{database}`.notes") == [(2,)]
    assert (f"GRANT SELECT ON `{database}`.* TO `{role}`",) in server.execute(
        f"SHOW GRANTS FOR `{role}`"
    )

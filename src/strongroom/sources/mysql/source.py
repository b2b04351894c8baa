"""The ``mysql`` source: every database of a MySQL or MariaDB server, plus its accounts.

A backup writes:

* ``users.sql``: every account outside the server's own (``SHOW CREATE USER`` made
  ``IF NOT EXISTS``, roles, then ``SHOW GRANTS``), see :mod:`strongroom.sources.mysql.facts`;
* per database ``db/<name>.sql``: ``mariadb-dump`` (or ``mysqldump``) with
  ``--single-transaction --routines --events --triggers --hex-blob``, streamed from the
  tool's stdout into the sink. ``<name>`` is percent-encoded.

Consistency point: with the binary log on, the dump records its binary log coordinates
(``--master-data=2``, ``--source-data=2`` for MySQL's tool) as a comment taken inside its
own consistent snapshot; MariaDB does this without a global read lock. The facts a restore
is checked against (row counts, ``CHECKSUM TABLE``, views, routines, triggers, events) are
read in a second ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` begun just before the dump.
MySQL cannot share a snapshot between sessions, so the two snapshots are compared through
their binary log positions: equal positions mean no transaction committed in between and
the facts describe exactly the dumped data (``consistency: exact``). Otherwise the facts
are read again after the dump; tables equal in both readings are kept as checked, the
others are listed as ``changed_during_backup`` and compared by presence only
(``consistency: compared``).

Restore and restore test: :mod:`strongroom.sources.mysql.restore`. See
``docs/sources/mysql.md``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Final

import pymysql

from strongroom.config.resources import MysqlResource
from strongroom.errors import (
    AccessDeniedError,
    NotFoundError,
    StrongroomError,
    ToolError,
)
from strongroom.sources import gateway
from strongroom.sources.base import (
    BackupResult,
    Description,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    StreamSink,
    check_restorable,
)
from strongroom.sources.mysql import facts as mysql_facts
from strongroom.sources.mysql.dump import stream_dump
from strongroom.sources.mysql.restore import (
    SCRATCH_PREFIX,
    USERS_STREAM,
    MyRestorer,
    stream_name,
)
from strongroom.sources.mysql.server import (
    DUMP_TOOLS,
    Connection,
    MyServer,
    classifier,
    translating,
)
from strongroom.sources.mysql.target import MysqlRestoreTarget
from strongroom.sources.targets import parse_target
from strongroom.sources.tool_streams import ToolRunner, write_stream

__all__ = ["MysqlRestoreTarget", "MysqlSource", "stream_name"]

FORMAT: Final = "strongroom-mysql"
VERSION: Final = 1
PART_ERRORS: Final = (NotFoundError, AccessDeniedError, ToolError)
"""Errors that fail one part (users or one database); anything else fails the backup."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _same_position(first: JsonObject | None, second: JsonObject | None) -> bool:
    """Tell whether two binary log positions are known and equal."""
    if first is None or second is None:
        return False
    return bool(first["file"] == second["file"] and first["position"] == second["position"])


class MysqlSource:
    """Backs up, restores and restore-tests a MySQL/MariaDB server; see the module docstring.

    Given the resource settings and: ``bindir`` (folder of the client tools; None: PATH),
    ``checksum`` (``auto``, ``full`` or ``off``: ``CHECKSUM TABLE`` for every table, for
    tables up to ``checksum_full_limit`` bytes, or none), ``connect_timeout``, ``timeout``
    (seconds per tool run) and ``scratch_server`` (another server for restore tests).
    """

    type_name: ClassVar[str] = "mysql"

    def __init__(
        self,
        settings: MysqlResource,
        *,
        bindir: Path | None = None,
        checksum: mysql_facts.ChecksumMode = "auto",
        checksum_full_limit: int = 1024**3,
        connect_timeout: int = 10,
        timeout: float | None = None,
        scratch_server: MysqlResource | None = None,
    ) -> None:
        self.settings = settings
        self.bindir = bindir
        self.checksum = checksum
        self.checksum_full_limit = checksum_full_limit
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.scratch_server = scratch_server

    def _server(self, settings: MysqlResource | None = None) -> MyServer:
        return MyServer.from_settings(
            settings or self.settings, connect_timeout=self.connect_timeout, bindir=self.bindir
        )

    def _restorer(self, server: MyServer, context: SourceContext) -> MyRestorer:
        return MyRestorer(server=server, context=context, timeout=self.timeout)

    def _databases(self, connection: Connection) -> list[str]:
        if self.settings.databases:
            return list(self.settings.databases)
        names = [str(row[0]) for row in mysql_facts.rows(connection, "SHOW DATABASES")]
        excluded = mysql_facts.SYSTEM_DATABASES | set(self.settings.exclude_databases)
        return sorted(name for name in names if name not in excluded)

    def describe(self, context: SourceContext) -> Description:
        """Name the server version, the dump tool and the databases a backup covers."""
        server = self._server()
        tool = server.tool(DUMP_TOOLS)
        _, version = gateway.run([tool, "--version"], timeout=30)
        with translating(f"reading {server.address}"), server.connect() as connection:
            server_version = str(mysql_facts.rows(connection, "SELECT VERSION()")[0][0])
            databases = self._databases(connection)
        return Description(
            summary=f"MySQL/MariaDB {server_version} at {server.address}: "
            f"{len(databases)} database(s) and the accounts",
            parts=[USERS_STREAM, *(stream_name(name) for name in databases)],
            tools={"server": server_version, Path(tool).name: version.decode().strip()},
        )

    # -- backup ----------------------------------------------------------------------------

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        """Write ``users.sql`` and one dump per database; return the metadata.

        A database that cannot be dumped (missing, no permission, tool error) is a failed
        part, as are the accounts; when every database fails the first error is raised.
        Errors of the sink, cancellation and transient errors fail the whole backup.
        Raises ``AccessDeniedError`` (1045), ``NetworkError`` (2002/2003/2005, retryable),
        ``NotFoundError`` (1049), ``ToolError`` when no dump tool is installed.
        """
        server = self._server()
        tool = server.tool(DUMP_TOOLS)
        _, version_output = gateway.run([tool, "--version"], timeout=30)
        _, help_output = gateway.run([tool, "--help"], timeout=30)
        failed: dict[str, str] = {}
        with translating(f"reading {server.address}"), server.connect() as connection:
            server_version = str(mysql_facts.rows(connection, "SELECT VERSION()")[0][0])
            databases = self._databases(connection)
            position = self._binlog_option(connection, help_output.decode(errors="replace"))
            metadata: JsonObject = {
                "format": FORMAT,
                "version": VERSION,
                "server": {"address": server.address, "version": server_version},
                "dump_tool": {"name": Path(tool).name, "version": version_output.decode().strip()},
                "checksum": {"mode": self.checksum, "full_limit": self.checksum_full_limit},
                "binlog": position is not None,
                "databases": {},
            }
            if context.dry_run:
                metadata["dry_run"] = True
                metadata["databases"] = {name: {} for name in databases}
                return BackupResult(metadata=metadata)
            try:
                script, accounts = mysql_facts.capture_users(connection)
                data = script.encode()
                metadata["users"] = {
                    "stream": USERS_STREAM,
                    "accounts": accounts,
                    **write_stream(sink, USERS_STREAM, data, context),
                }
            except PART_ERRORS as exc:
                failed[USERS_STREAM] = str(exc)
        argv = [
            tool,
            *server.client_options(),
            "--single-transaction",
            "--routines",
            "--events",
            "--triggers",
            "--hex-blob",
            "--quick",
            "--default-character-set=utf8mb4",
        ]
        if position is not None:
            argv.append(position)
        if "--column-statistics" in help_output.decode(errors="replace"):
            argv.append("--column-statistics=0")  # MySQL 8's tool against a MariaDB server
        errors: list[StrongroomError] = []
        for name in databases:
            context.check_cancelled()
            try:
                metadata["databases"][name] = self._backup_database(
                    server, argv, name, context, sink
                )
            except PART_ERRORS as exc:
                failed[stream_name(name)] = str(exc)
                errors.append(exc)
        if errors and len(errors) == len(databases):
            raise errors[0]
        return BackupResult(metadata=metadata, failed_parts=failed)

    @staticmethod
    def _binlog_option(connection: Connection, help_text: str) -> str | None:
        """The dump option that records binary log coordinates, when they can be read."""
        if not mysql_facts.binary_log_enabled(connection):
            return None
        try:
            mysql_facts.rows(connection, "SHOW MASTER STATUS")
        except pymysql.MySQLError:  # no BINLOG MONITOR / REPLICATION CLIENT privilege
            return None
        return "--source-data=2" if "--source-data" in help_text else "--master-data=2"

    def _backup_database(
        self,
        server: MyServer,
        argv: list[str],
        name: str,
        context: SourceContext,
        sink: StreamSink,
    ) -> JsonObject:
        entry: JsonObject = {"started_at": _now(), "stream": stream_name(name)}
        doing = f"dumping database {name!r} on {server.address}"
        with translating(doing), server.connect(name) as session:
            snapshot = mysql_facts.start_snapshot(session)
            tools = ToolRunner(server, classifier, context.cancel, self.timeout)
            dumped = stream_dump([*argv, "--", name], tools, doing, sink, entry["stream"], context)
            facts = mysql_facts.gather(session, name, self.checksum, self.checksum_full_limit)
            mysql_facts.end_snapshot(session)
            entry.update(dumped)
            entry["snapshot_binlog"] = snapshot
            if _same_position(snapshot, dumped["binlog"]):
                entry["consistency"] = "exact"
            else:
                context.check_cancelled()
                mysql_facts.start_snapshot(session)
                again = mysql_facts.gather(session, name, self.checksum, self.checksum_full_limit)
                mysql_facts.end_snapshot(session)
                entry["consistency"] = "compared"
                entry["changed_during_backup"] = mysql_facts.changed_tables(facts, again)
            entry.update(facts)
        entry["finished_at"] = _now()
        return entry

    # -- restore ---------------------------------------------------------------------------

    def restore(
        self,
        context: SourceContext,
        reader: StreamReader,
        metadata: JsonObject,
        target: JsonObject,
    ) -> RestoreReport:
        """Restore accounts, then the selected databases (see ``MysqlRestoreTarget``).

        Raises ``ConfigError`` for a bad target, ``NotFoundError`` for a database not in
        the backup, ``ConflictError`` when a target database exists (nothing changes
        then), typed tool errors when the client fails (the half-restored database is
        dropped again).
        """
        check_restorable(metadata, FORMAT, self.type_name)
        options = parse_target(MysqlRestoreTarget, target, self.type_name)
        return self._restorer(self._server(), context).restore(reader, metadata, options)

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        """Restore each database into a scratch database, compare, drop it.

        Accounts are not replayed (they are server-wide): ``users.sql`` is only read and
        its SHA-256 checked. Events are restored disabled. A client failure or a damaged
        stream is a failed check naming the database.
        """
        check_restorable(metadata, FORMAT, self.type_name)
        server = self._server(self.scratch_server)
        report = RestoreReport(target=f"mysql://{server.address}/{SCRATCH_PREFIX}*")
        return self._restorer(server, context).restore_test(reader, metadata, report)

"""The ``postgres`` source: every database of a PostgreSQL server, plus its roles.

A backup writes:

* ``globals.sql``: roles, role memberships and tablespaces (``pg_dumpall --globals-only``,
  without role passwords when ``pg_authid`` is not readable);
* per database ``db/<name>.dump``, a custom-format archive streamed from ``pg_dump``'s
  stdout (``jobs == 1``), or ``db/<name>/<file>``, the files of a directory-format archive
  written with ``pg_dump --jobs N`` (``jobs > 1``). ``<name>`` is percent-encoded.

Consistency: for each database a REPEATABLE READ transaction exports its snapshot
(``pg_export_snapshot()``) and ``pg_dump --snapshot`` dumps exactly that snapshot, while the
same transaction records the WAL position, the transaction snapshot and, on a helper thread
during the dump, the facts a restore is checked against
(:mod:`strongroom.sources.postgres.facts`): per table row count and content checksum,
extensions, large objects, materialized views, privileges. So the counts and checksums
describe precisely the data in the archive. Sequences are not transactional: they are read
before and after the dump, and a restored value must lie between the two.

Restore and restore test: :mod:`strongroom.sources.postgres.restore`. See
``docs/sources/postgres.md``.
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Final

import psycopg

from strongroom.config.resources import PostgresResource
from strongroom.errors import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
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
from strongroom.sources.erasure import skipped_databases
from strongroom.sources.postgres import facts as postgres_facts
from strongroom.sources.postgres.archive import database_exists, missing_roles, stream_base
from strongroom.sources.postgres.dump import (
    DirectoryDump,
    dump_globals,
    role_names,
)
from strongroom.sources.postgres.restore import (
    GLOBALS_STREAM,
    SCRATCH_PREFIX,
    PgRestorer,
)
from strongroom.sources.postgres.server import (
    PgServer,
    classifier,
    server_version_text,
    tool_version,
    translating,
)
from strongroom.sources.postgres.target import PostgresRestoreTarget
from strongroom.sources.targets import parse_target
from strongroom.sources.tool_streams import ToolRunner, write_stream

__all__ = ["PostgresRestoreTarget", "PostgresSource", "stream_base"]

FORMAT: Final = "strongroom-postgres"
VERSION: Final = 1
PART_ERRORS: Final = (NotFoundError, AccessDeniedError, ToolError)
"""Errors that fail one part (globals or one database); anything else fails the backup."""
_SNAPSHOT_QUERY: Final = (
    "SELECT pg_export_snapshot(), "
    "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END)::text, txid_current_snapshot()::text"
)
_DATABASES_QUERY: Final = (
    "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname"
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class PostgresSource:
    """Backs up, restores and restore-tests a PostgreSQL server; see the module docstring.

    Given the resource settings and: ``bindir`` (folder of the client tools; None: PATH),
    ``checksum`` (``auto``, ``full``, ``sampled`` or ``off``), ``checksum_full_limit`` (heap
    bytes up to which ``auto`` hashes a whole table), ``sample_rows``, ``compression``
    (``pg_dump --compress``; "0" by default because the vault compresses and deduplicates
    better without it; None keeps pg_dump's default), ``connect_timeout`` and ``timeout``
    (seconds per tool run), ``maintenance_database`` and ``scratch_server`` (another server
    for restore tests; None: the same one).
    """

    type_name: ClassVar[str] = "postgres"

    def __init__(
        self,
        settings: PostgresResource,
        *,
        bindir: Path | None = None,
        checksum: postgres_facts.ChecksumMode = "auto",
        checksum_full_limit: int = 1024**3,
        sample_rows: int = 10_000,
        compression: str | None = "0",
        connect_timeout: int = 10,
        timeout: float | None = None,
        maintenance_database: str = "postgres",
        scratch_server: PostgresResource | None = None,
    ) -> None:
        self.settings = settings
        self.bindir = bindir
        self.checksum = checksum
        self.checksum_full_limit = checksum_full_limit
        self.sample_rows = sample_rows
        self.compression = compression
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.maintenance_database = maintenance_database
        self.scratch_server = scratch_server

    def _server(self, settings: PostgresResource | None = None) -> PgServer:
        return PgServer.from_settings(
            settings or self.settings,
            connect_timeout=self.connect_timeout,
            maintenance_database=self.maintenance_database,
            bindir=self.bindir,
        )

    def _restorer(self, server: PgServer, context: SourceContext) -> PgRestorer:
        return PgRestorer(
            server=server,
            context=context,
            jobs=self.settings.jobs,
            timeout=self.timeout,
            full_limit=self.checksum_full_limit,
            sample_rows=self.sample_rows,
        )

    @staticmethod
    def _tool_version(server: PgServer, tool: str) -> tuple[str, tuple[int, int]]:
        path = server.tool(tool)
        _, output = gateway.run([path, "--version"], timeout=30)
        return path, tool_version(output.decode(errors="replace"))

    def _inventory(self, server: PgServer) -> tuple[int, list[str]]:
        """Return the server version number and the databases to back up."""
        with (
            translating(f"listing databases on {server.address}"),
            server.connect(self.maintenance_database, autocommit=True) as connection,
        ):
            number = connection.info.server_version
            if self.settings.databases:
                return number, list(self.settings.databases)
            names = [str(row[0]) for row in connection.execute(_DATABASES_QUERY).fetchall()]
        excluded = set(self.settings.exclude_databases)
        return number, [name for name in names if name not in excluded]

    @staticmethod
    def _check_client(tool: str, client: tuple[int, int], server_number: int) -> None:
        if client[0] and client[0] < server_number // 10000:
            raise ToolError(
                f"{tool} {client[0]}.{client[1]} is older than the server "
                f"({server_version_text(server_number)}): server version mismatch",
                retryable=False,
                hint=f"Install postgresql-client-{server_number // 10000} (or newer) and set "
                "bindir to its folder (e.g. /usr/lib/postgresql/<major>/bin).",
            )

    def describe(self, context: SourceContext) -> Description:
        """Name the server version, the pg_dump version and the databases a backup covers."""
        server = self._server()
        number, databases = self._inventory(server)
        _, client = self._tool_version(server, "pg_dump")
        return Description(
            summary=f"PostgreSQL {server_version_text(number)} at {server.address}: "
            f"{len(databases)} database(s) and the roles",
            parts=[GLOBALS_STREAM, *(stream_base(name) for name in databases)],
            tools={"server": server_version_text(number), "pg_dump": f"{client[0]}.{client[1]}"},
        )

    # -- backup ----------------------------------------------------------------------------

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        """Dump the globals and every database; return the metadata described above.

        A database that cannot be dumped (missing, no permission, tool error) is a failed
        part, as are the globals; when every database fails the first error is raised.
        Errors of the sink, cancellation and transient errors fail the whole backup.
        Raises ``ToolError`` when pg_dump is missing or older than the server,
        ``AccessDeniedError`` for refused credentials, ``NetworkError`` (retryable) when
        the server cannot be reached.
        """
        server = self._server()
        number, databases = self._inventory(server)
        pg_dump, client = self._tool_version(server, "pg_dump")
        self._check_client("pg_dump", client, number)
        metadata: JsonObject = {
            "format": FORMAT,
            "version": VERSION,
            "server": {
                "address": server.address,
                "version": server_version_text(number),
                "version_num": number,
            },
            "pg_dump_version": f"{client[0]}.{client[1]}",
            "checksum": {
                "mode": self.checksum,
                "algorithm": postgres_facts.algorithm_for(number),
                "full_limit": self.checksum_full_limit,
                "sample_rows": self.sample_rows,
            },
            "databases": {},
        }
        if context.dry_run:
            metadata["dry_run"] = True
            metadata["databases"] = {name: {} for name in databases}
            return BackupResult(metadata=metadata)
        failed: dict[str, str] = {}
        try:
            dumped = dump_globals(server, context, self.timeout)
            script: bytes = dumped["script"]
            metadata["globals"] = {
                "stream": GLOBALS_STREAM,
                "role_passwords": dumped["role_passwords"],
                "roles": role_names(script.decode(errors="replace")),
                **write_stream(sink, GLOBALS_STREAM, script, context),
            }
        except PART_ERRORS as exc:
            failed[GLOBALS_STREAM] = str(exc)
        errors: list[StrongroomError] = []
        for name in databases:
            context.check_cancelled()
            try:
                metadata["databases"][name] = self._backup_database(
                    server, name, pg_dump, number, context, sink
                )
            except PART_ERRORS as exc:
                failed[stream_base(name)] = str(exc)
                errors.append(exc)
        if errors and len(errors) == len(databases):
            raise errors[0]
        return BackupResult(metadata=metadata, failed_parts=failed)

    def _backup_database(
        self,
        server: PgServer,
        name: str,
        pg_dump: str,
        server_number: int,
        context: SourceContext,
        sink: StreamSink,
    ) -> JsonObject:
        algorithm = postgres_facts.algorithm_for(server_number)
        entry: JsonObject = {"started_at": _now(), "checksum_algorithm": algorithm}
        with translating(f"reading database {name!r} on {server.address}"):
            connection = server.connect(name)
            try:
                connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                connection.read_only = True
                postgres_facts.apply_session_settings(connection, background=True)
                row = connection.execute(_SNAPSHOT_QUERY).fetchone()
                assert row is not None  # noqa: S101 - a SELECT without FROM returns one row
                snapshot, lsn, txids = row
                entry["snapshot"] = {"id": snapshot, "lsn": lsn, "txid_snapshot": txids}
                entry["properties"] = postgres_facts.database_properties(connection)
                sequence_names = postgres_facts.gather_sequence_names(connection)
                entry["sequences"] = postgres_facts.read_sequences(connection, sequence_names)

                def gather(stop: threading.Event) -> JsonObject:
                    return postgres_facts.gather(
                        connection,
                        mode=self.checksum,
                        full_limit=self.checksum_full_limit,
                        sample_rows=self.sample_rows,
                        algorithm=algorithm,
                        stop=stop,
                    )

                with postgres_facts.Background(connection, gather) as facts:
                    entry.update(self._dump(server, name, snapshot, pg_dump, context, sink))
                entry.update(facts.result(context.cancel))
                entry["sequences_after"] = postgres_facts.read_sequences(connection, sequence_names)
                connection.rollback()
            finally:
                connection.close()
        entry["finished_at"] = _now()
        return entry

    def _dump(
        self,
        server: PgServer,
        name: str,
        snapshot: str,
        pg_dump: str,
        context: SourceContext,
        sink: StreamSink,
    ) -> JsonObject:
        doing = f"pg_dump of database {name!r} on {server.address}"
        jobs = self.settings.jobs
        argv = [pg_dump, "--no-password", f"--snapshot={snapshot}", "--blobs"]
        if self.compression is not None:
            argv.append(f"--compress={self.compression}")
        base = stream_base(name)
        if jobs == 1:
            argv += ["--format=custom", f"--dbname={server.conninfo(name)}"]
            stream = f"{base}.dump"
            tools = ToolRunner(server, classifier, context.cancel, self.timeout)
            digest = tools.stream_into(argv, doing, sink, stream, context)
            return {"format": "custom", "jobs": 1, "streams": {stream: digest}}
        folder = context.scratch / f"pg_dump-{secrets.token_hex(6)}"
        argv += [
            "--format=directory",
            f"--jobs={jobs}",
            f"--file={folder}",
            f"--dbname={server.conninfo(name)}",
        ]
        dump = DirectoryDump(argv, server, doing, folder, sink, f"{base}/", context, self.timeout)
        streams = dump.run()
        return {
            "format": "directory",
            "jobs": jobs,
            "streams": streams,
            "scratch_peak_bytes": dump.peak_bytes,
        }

    # -- restore ---------------------------------------------------------------------------

    def restore(
        self,
        context: SourceContext,
        reader: StreamReader,
        metadata: JsonObject,
        target: JsonObject,
    ) -> RestoreReport:
        """Restore roles, then the selected databases (see ``PostgresRestoreTarget``).

        Raises ``ConfigError`` for a bad target, ``NotFoundError`` for a database not in
        the backup, ``ConflictError`` when a target database exists (nothing is changed
        then), typed tool errors when psql or pg_restore fails (a half-restored database
        is dropped again).
        """
        check_restorable(metadata, FORMAT, self.type_name)
        options = parse_target(PostgresRestoreTarget, target, self.type_name)
        recorded: dict[str, JsonObject] = metadata.get("databases", {})
        selected = options.databases or sorted(recorded)
        unknown = [name for name in selected if name not in recorded]
        if unknown:
            raise NotFoundError(f"database(s) not in this backup: {', '.join(unknown)}")
        if options.database is not None and len(selected) != 1:
            raise ConfigError("a new database name needs exactly one database selected")
        names = {name: options.database or name for name in selected}
        server = self._server()
        restorer = self._restorer(server, context)
        report = RestoreReport(target=f"postgresql://{server.address}/{','.join(names.values())}")
        with (
            translating(f"restoring on {server.address}"),
            server.connect(self.maintenance_database, autocommit=True) as admin,
        ):
            taken = [new for new in names.values() if database_exists(admin, new)]
            if taken:
                raise ConflictError(
                    f"database(s) already exist on {server.address}: {', '.join(taken)}",
                    hint="Restore under a new name (database: …) or drop the existing one first.",
                )
            if context.dry_run:
                report.notes.append(f"dry run: would restore {names} on {server.address}")
                return report
            if options.roles and "globals" in metadata:
                restorer.replay_globals(reader, metadata["globals"], options, report)
            for original, new in names.items():
                context.check_cancelled()
                restorer.restore_database(
                    admin, reader, original, new, recorded[original], options, report
                )
        report.erasures.extend(skipped_databases(context.erasures, names, target=report.target))
        return report

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        """Restore each database into a scratch database, compare everything, drop it.

        Roles are not replayed (they are cluster-wide); when every recorded role exists on
        the test server, owners and privileges are restored and compared too, otherwise
        the databases are restored without them (noted). A pg_restore failure or a damaged
        stream is a failed check naming the database; each scratch database is dropped on
        every path out. Raises typed errors when the server cannot be used (e.g.
        ``AccessDeniedError`` without the right to create databases).
        """
        check_restorable(metadata, FORMAT, self.type_name)
        server = self._server(self.scratch_server)
        restorer = self._restorer(server, context)
        report = RestoreReport(target=f"postgresql://{server.address}/{SCRATCH_PREFIX}*")
        roles: list[str] = []
        if "globals" in metadata:
            roles = list(metadata["globals"].get("roles", []))
            report.checks.append(restorer.test_globals(reader, metadata["globals"]))
        with (
            translating(f"restore test on {server.address}"),
            server.connect(self.maintenance_database, autocommit=True) as admin,
        ):
            missing = missing_roles(admin, roles)
            if missing:
                report.notes.append(
                    f"roles missing on {server.address} ({', '.join(missing[:10])}): restored "
                    "without owners and privileges, which are not compared"
                )
            for name, recorded in metadata.get("databases", {}).items():
                context.check_cancelled()
                checks, notes, erased = restorer.test_database(
                    admin, reader, name, recorded, not missing
                )
                report.checks.extend(checks)
                report.notes.extend(notes)
                report.erasures.extend(erased)
            report.erasures.extend(
                skipped_databases(
                    context.erasures, metadata.get("databases", {}), target=report.target
                )
            )
        return report

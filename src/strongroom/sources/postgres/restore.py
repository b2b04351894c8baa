"""Restore and restore test of the ``postgres`` source (see :mod:`strongroom.sources.postgres.source`).

A restore replays ``globals.sql`` (roles) with ``psql``, then runs ``pg_restore
--exit-on-error`` per database: under the original name with ``--create`` (database-level
settings included), or into a new database created from ``template0`` with the recorded
encoding and locale. A database that fails half-way is dropped again. The report checks the
roles, every stream's SHA-256, and the tables, row counts, sequences, extensions and large
objects of each restored database (checksums too with ``checks: full``).

A restore test does the same into ``strongroom_rt_<random>`` scratch databases without
touching roles, compares every recorded fact and drops each scratch database in a
``finally``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

import psycopg
from psycopg import sql

from strongroom.errors import ErasureError, IntegrityError, NotFoundError, ToolError
from strongroom.logs import get_logger
from strongroom.sources import gateway
from strongroom.sources.base import (
    Check,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    erasure_test,
)
from strongroom.sources.erasure import ErasureEffect, apply_sql
from strongroom.sources.postgres import facts as postgres_facts
from strongroom.sources.postgres.archive import (
    create_database,
    drop_database,
    materialize,
    missing_roles,
    prepare_globals,
    psql_knows_restrict,
    remove_path,
    stream_base,
)
from strongroom.sources.postgres.server import (
    Connection,
    PgServer,
    classifier,
    tool_version,
    translating,
)
from strongroom.sources.postgres.target import PostgresRestoreTarget
from strongroom.sources.tool_streams import CheckedBlocks, ToolRunner, read_whole

log = get_logger(__name__)

GLOBALS_STREAM: Final = "globals.sql"
SCRATCH_PREFIX: Final = "strongroom_rt_"


@dataclass(frozen=True)
class PgRestorer:
    """Runs restores and restore tests against one server with the source's options."""

    server: PgServer
    context: SourceContext
    jobs: int
    timeout: float | None
    full_limit: int
    sample_rows: int

    @property
    def tools(self) -> ToolRunner:
        """Runs the client tools against :attr:`server` for this operation."""
        return ToolRunner(self.server, classifier, self.context.cancel, self.timeout)

    def replay_globals(
        self,
        reader: StreamReader,
        recorded: JsonObject,
        options: PostgresRestoreTarget,
        report: RestoreReport,
    ) -> None:
        """Replay ``globals.sql`` (rewritten, see ``postgres_archive``) with psql."""
        psql = self.server.tool("psql")
        _, output = gateway.run([psql, "--version"], timeout=30)
        script, notes = prepare_globals(
            read_whole(reader, GLOBALS_STREAM, recorded).decode(),
            tablespaces=options.tablespaces,
            keep_restrict=psql_knows_restrict(tool_version(output.decode(errors="replace"))),
        )
        argv = [
            psql,
            "--no-password",
            "--no-psqlrc",
            "--quiet",
            "--set=ON_ERROR_STOP=1",
            f"--dbname={self.server.conninfo(self.server.maintenance_database)}",
        ]
        if not options.tablespaces:
            argv.append("--single-transaction")  # CREATE TABLESPACE refuses a transaction
        self.tools.feed(
            argv, [script.encode()], f"replaying {GLOBALS_STREAM} on {self.server.address}"
        )
        report.notes.extend(notes)
        if not recorded.get("role_passwords", True):
            report.notes.append("the roles were backed up without passwords; set them again")
        roles = sorted(recorded.get("roles", []))
        with (
            translating(f"listing roles on {self.server.address}"),
            self.server.connect(self.server.maintenance_database, autocommit=True) as connection,
        ):
            missing = set(missing_roles(connection, roles))
        report.checks.append(
            Check("roles restored", roles, [role for role in roles if role not in missing])
        )

    def restore_database(
        self,
        admin: Connection,
        reader: StreamReader,
        original: str,
        new: str,
        recorded: JsonObject,
        options: PostgresRestoreTarget,
        report: RestoreReport,
    ) -> None:
        """Restore one database as ``new``; drop it again if pg_restore fails."""
        argv = [self.server.tool("pg_restore"), "--no-password", "--exit-on-error"]
        if options.no_owner or options.owner:
            argv.append("--no-owner")
        if options.owner:
            argv.append(f"--role={options.owner}")
        if options.no_acl:
            argv.append("--no-acl")
        properties: JsonObject = recorded.get("properties", {})
        try:
            if new == original:
                argv += ["--create", f"--dbname={self.server.conninfo(admin.info.dbname)}"]
            else:
                create_database(admin, new, properties)
                owner = None if options.no_owner else options.owner or properties.get("owner")
                if owner:
                    admin.execute(
                        sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                            sql.Identifier(new), sql.Identifier(owner)
                        )
                    )
                argv.append(f"--dbname={self.server.conninfo(new)}")
                report.notes.append(
                    f"{new}: the database-level settings, privileges and comment of {original} "
                    "are restored only under the original name"
                )
            report.checks.extend(
                self.pg_restore(argv, reader, recorded, options.jobs or self.jobs, original)
            )
        except BaseException:
            self._drop(admin, new, report)
            raise
        if options.checks != "none":
            report.checks.extend(
                self.verify(
                    new,
                    original,
                    recorded,
                    checksums=options.checks == "full",
                    privileges=not (options.no_owner or options.owner or options.no_acl),
                )
            )
        try:
            report.erasures.extend(self.erase(original, new))
        except ErasureError as exc:
            # The copy still holds the subject: it must not stay behind as a good restore.
            self._drop(admin, new, report)
            raise ErasureError(
                f"{exc.message}; the restored database {new} was dropped again", hint=exc.hint
            ) from exc

    def erase(self, original: str, restored: str) -> list[ErasureEffect]:
        """Re-apply the open erasure requests of backed-up database ``original`` in the
        restored database ``restored``; see :func:`strongroom.sources.erasure.apply_sql`."""
        if not any(erasure.applies_to_database(original) for erasure in self.context.erasures):
            return []
        target = f"postgresql://{self.server.address}/{restored}"
        with translating(f"erasing in {target}"), self.server.connect(restored) as connection:
            return apply_sql(
                connection,
                self.context.erasures,
                original=original,
                target=target,
                driver_errors=(psycopg.Error,),
            )

    def pg_restore(
        self, argv: list[str], reader: StreamReader, recorded: JsonObject, jobs: int, label: str
    ) -> list[Check]:
        """Run pg_restore on a recorded archive; return the stream SHA-256 checks.

        A custom archive restored with one job is fed through stdin; otherwise the
        archive is written into the scratch folder first (removed afterwards).
        """
        streams: dict[str, JsonObject] = recorded["streams"]
        doing = f"pg_restore of database {label!r} on {self.server.address}"
        kind = recorded.get("format", "custom")
        if kind == "custom" and jobs == 1:
            (name,) = streams
            blocks = CheckedBlocks(reader, name, streams[name])
            self.tools.feed([*argv, "--format=custom"], blocks, doing)
            return [blocks.check()]
        base = stream_base(label)
        prefix = f"{base}.dump" if kind == "custom" else f"{base}/"
        path = self.context.scratch / f"pg_restore-{secrets.token_hex(6)}"
        try:
            checks = materialize(reader, streams, prefix, path)
            self.tools.run_to_file([*argv, f"--format={kind}", f"--jobs={jobs}", str(path)], doing)
        finally:
            remove_path(path)
        return checks

    def verify(
        self,
        database: str,
        label: str,
        recorded: JsonObject,
        *,
        checksums: bool,
        privileges: bool,
    ) -> list[Check]:
        """Gather the facts of a restored database and compare them with the recorded ones."""
        algorithm = recorded.get("checksum_algorithm", "hash64x2")
        with (
            translating(f"checking database {database!r} on {self.server.address}"),
            self.server.connect(database) as connection,
        ):
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            postgres_facts.apply_session_settings(connection)
            found = postgres_facts.gather(
                connection,
                mode="full" if checksums else "off",
                full_limit=self.full_limit,
                sample_rows=self.sample_rows,
                algorithm=algorithm,
                recorded=recorded if checksums else None,
            )
            sequences = postgres_facts.read_sequences(connection, found["sequence_names"])
            connection.rollback()
        return postgres_facts.compare(
            label, recorded, found, sequences, checksums=checksums, privileges=privileges
        )

    def test_globals(self, reader: StreamReader, recorded: JsonObject) -> Check:
        """Read ``globals.sql`` whole and check its SHA-256 (nothing is replayed)."""
        blocks = CheckedBlocks(reader, GLOBALS_STREAM, recorded)
        try:
            for _block in blocks:
                pass
        except (IntegrityError, NotFoundError) as exc:
            return Check(f"stream {GLOBALS_STREAM} sha256", recorded.get("sha256"), str(exc))
        return blocks.check()

    def test_database(
        self, admin: Connection, reader: StreamReader, name: str, recorded: JsonObject, full: bool
    ) -> tuple[list[Check], list[str], list[ErasureEffect]]:
        """Restore one database into a scratch database, compare, re-apply the erasure
        requests, drop it; return checks, notes and what the erasures did.

        ``full`` restores and compares owners and privileges too (every recorded role
        exists). A pg_restore failure or a damaged stream is a failed check.
        """
        scratch = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
        argv = [
            self.server.tool("pg_restore"),
            "--no-password",
            "--exit-on-error",
            f"--dbname={self.server.conninfo(scratch)}",
        ]
        if not full:
            argv += ["--no-owner", "--no-acl"]
        report = RestoreReport(target=scratch)
        try:
            create_database(admin, scratch, recorded.get("properties", {}))
            try:
                report.checks = self.pg_restore(argv, reader, recorded, self.jobs, name)
            except (ToolError, IntegrityError, NotFoundError) as exc:
                report.checks = [Check(f"{name}: pg_restore", "completed", str(exc))]
                return report.checks, report.notes, []
            report.checks.extend(
                self.verify(scratch, name, recorded, checksums=True, privileges=full)
            )
            checks, report.erasures = erasure_test(name, lambda: self.erase(name, scratch))
            report.checks.extend(checks)
        finally:
            self._drop(admin, scratch, report)
        return report.checks, report.notes, report.erasures

    def _drop(self, admin: Connection, name: str, report: RestoreReport) -> None:
        try:
            drop_database(admin, name)
        except psycopg.Error as exc:
            log.warning("could not drop database %s on %s: %s", name, self.server.address, exc)
            report.notes.append(f"could not drop database {name}: {exc}; drop it by hand")

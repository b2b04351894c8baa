"""Restore and restore test of the ``mysql`` source (see :mod:`strongroom.sources.mysql.source`).

A restore replays ``users.sql`` first (all accounts, or the ones named; grants on renamed
databases follow the new names), then creates each target database with the recorded
character set and collation and feeds its dump to the ``mariadb`` (or ``mysql``) client
through stdin, without a copy on disk. The client runs with ``--sandbox`` when it knows
it; for a client that does not, the dump's sandbox line is removed (see
:mod:`strongroom.sources.mysql.dump`). A database that fails half-way is dropped again.

A restore test restores each database into ``strongroom_rt_<random>`` with its events
disabled, compares row counts, ``CHECKSUM TABLE`` values and the names of views, routines,
triggers and events with the recorded ones, and drops the scratch database in a
``finally``. Accounts are never replayed by a test.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Final
from urllib.parse import quote

import pymysql

from strongroom.errors import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
    ErasureError,
    IntegrityError,
    NotFoundError,
    ToolError,
)
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
from strongroom.sources.erasure import ErasureEffect, apply_sql, skipped_databases
from strongroom.sources.mysql import facts as mysql_facts
from strongroom.sources.mysql.dump import filter_dump, map_grants
from strongroom.sources.mysql.server import (
    CLIENT_TOOLS,
    Connection,
    MyServer,
    classifier,
    quote_name,
    translating,
)
from strongroom.sources.mysql.target import MysqlRestoreTarget
from strongroom.sources.tool_streams import CheckedBlocks, ToolRunner, read_whole

log = get_logger(__name__)

USERS_STREAM: Final = "users.sql"
SCRATCH_PREFIX: Final = "strongroom_rt_"
_CHARSET_NAME: Final = re.compile(r"[A-Za-z0-9_]{1,64}")


def stream_name(database: str) -> str:
    """The stream of one database's dump: ``db/<percent-encoded name>.sql``."""
    return f"db/{quote(database, safe='')}.sql"


@dataclass(frozen=True)
class MyRestorer:
    """Runs restores and restore tests against one server."""

    server: MyServer
    context: SourceContext
    timeout: float | None

    def _client(self) -> tuple[str, bool]:
        """The client tool and whether it knows ``--sandbox``."""
        client = self.server.tool(CLIENT_TOOLS)
        _, output = gateway.run([client, "--help"], timeout=30)
        return client, b"--sandbox" in output

    def _feed(self, argv: list[str], blocks: Iterable[bytes], doing: str) -> gateway.ToolRun:
        return ToolRunner(self.server, classifier, self.context.cancel, self.timeout).feed(
            argv, blocks, doing
        )

    def _client_argv(self, client: str, sandbox: bool, database: str | None) -> list[str]:
        argv = [client, *self.server.client_options(timeout=True), "--batch"]
        if sandbox:
            argv.append("--sandbox")
        if database is not None:
            argv.append(f"--database={database}")
        return argv

    def restore(
        self, reader: StreamReader, metadata: JsonObject, options: MysqlRestoreTarget
    ) -> RestoreReport:
        """Restore as described in the module docstring; see ``MysqlSource.restore``."""
        recorded: dict[str, JsonObject] = metadata.get("databases", {})
        selected = options.databases or sorted(recorded)
        unknown = [name for name in [*selected, *options.database_map] if name not in recorded]
        if unknown:
            raise NotFoundError(f"database(s) not in this backup: {', '.join(unknown)}")
        if options.database is not None and len(selected) != 1:
            raise ConfigError("a new database name needs exactly one database selected")
        names = {
            name: options.database or options.database_map.get(name, name) for name in selected
        }
        report = RestoreReport(target=f"mysql://{self.server.address}/{','.join(names.values())}")
        client, sandbox = self._client()
        with (
            translating(f"restoring on {self.server.address}"),
            self.server.connect() as admin,
        ):
            taken = [new for new in names.values() if _exists(admin, new)]
            if taken:
                raise ConflictError(
                    f"database(s) already exist on {self.server.address}: {', '.join(taken)}",
                    hint="Restore under new names (database / database_map) or drop them first.",
                )
            if self.context.dry_run:
                report.notes.append(f"dry run: would restore {names} on {self.server.address}")
                return report
            grants = ""
            if options.users is not False and "users" not in metadata:
                report.notes.append(f"this backup holds no {USERS_STREAM}: no accounts replayed")
            if options.users is not False and "users" in metadata:
                creations, grants = self._users_script(reader, metadata["users"], options, names)
                self._feed(
                    self._client_argv(client, sandbox, None),
                    [creations.encode()],
                    f"creating the accounts of {USERS_STREAM} on {self.server.address}",
                )
            for original, new in names.items():
                self.context.check_cancelled()
                entry = recorded[original]
                _create(admin, new, entry)
                try:
                    report.checks.extend(
                        self._load(client, sandbox, reader, entry, new, disable_events=False)
                    )
                except BaseException:
                    self._drop(admin, new, report)
                    raise
                if options.checks != "none":
                    mode: mysql_facts.ChecksumMode = "full" if options.checks == "full" else "off"
                    found = mysql_facts.gather(
                        admin, new, mode, 0, entry if mode == "full" else None
                    )
                    report.checks.extend(_counts_only(original, entry, found, mode))
                try:
                    report.erasures.extend(self.erase(original, new))
                except ErasureError as exc:
                    # The copy still holds the subject: it must not stay behind.
                    self._drop(admin, new, report)
                    raise ErasureError(
                        f"{exc.message}; the restored database {new} was dropped again",
                        hint=exc.hint,
                    ) from exc
            if grants:
                report.checks.append(self._grant(client, sandbox, grants))
        report.erasures.extend(
            skipped_databases(self.context.erasures, names, target=report.target)
        )
        return report

    def erase(self, original: str, restored: str) -> list[ErasureEffect]:
        """Re-apply the open erasure requests of backed-up database ``original`` in the
        restored database ``restored`` (one transaction); see ``sources/erasure.py``."""
        if not any(erasure.applies_to_database(original) for erasure in self.context.erasures):
            return []
        target = f"mysql://{self.server.address}/{restored}"
        with translating(f"erasing in {target}"), self.server.connect(restored) as connection:
            connection.autocommit(False)
            return apply_sql(
                connection,
                self.context.erasures,
                original=original,
                target=target,
                driver_errors=(pymysql.MySQLError,),
            )

    def _grant(self, client: str, sandbox: bool, grants: str) -> Check:
        """Replay the grants, going on past a failing one (``--force``); one check for all.

        A grant can fail where the restore left its object out (a table-level grant on a
        database not restored); the databases are in place by then, so this is a failed
        check naming the statement rather than an exception.
        """
        name = f"{USERS_STREAM}: grants replayed"
        try:
            run = self._feed(
                [*self._client_argv(client, sandbox, None), "--force"],
                [grants.encode()],
                f"granting the privileges of {USERS_STREAM} on {self.server.address}",
            )
        except (ToolError, NotFoundError, AccessDeniedError) as exc:
            return Check(name, "without errors", str(exc))
        # With --force the client goes on and exits 0; its errors are on stderr.
        errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
        return Check(name, "without errors", " | ".join(errors) or "without errors")

    def _users_script(
        self,
        reader: StreamReader,
        recorded: JsonObject,
        options: MysqlRestoreTarget,
        names: dict[str, str],
    ) -> tuple[str, str]:
        """The account creations and the grants to replay (selected, databases renamed)."""
        script = read_whole(reader, USERS_STREAM, recorded).decode()
        wanted = set(options.users) if isinstance(options.users, list) else None
        unknown = sorted((wanted or set()) - set(recorded.get("accounts", [])))
        if unknown:
            raise NotFoundError(f"account(s) not in this backup: {', '.join(unknown)}")
        script = mysql_facts.select_accounts(script, wanted)
        script = map_grants(script, {old: new for old, new in names.items() if old != new})
        return mysql_facts.split_phases(script)

    def _load(
        self,
        client: str,
        sandbox: bool,
        reader: StreamReader,
        entry: JsonObject,
        database: str,
        *,
        disable_events: bool,
    ) -> list[Check]:
        """Feed one recorded dump into ``database``; return its SHA-256 check."""
        blocks = CheckedBlocks(reader, entry["stream"], entry)
        self._feed(
            self._client_argv(client, sandbox, database),
            filter_dump(blocks, strip_sandbox=not sandbox, disable_events=disable_events),
            f"loading {entry['stream']} into {database!r} on {self.server.address}",
        )
        return [blocks.check()]

    def restore_test(
        self, reader: StreamReader, metadata: JsonObject, report: RestoreReport
    ) -> RestoreReport:
        """Restore into scratch databases and compare; see ``MysqlSource.restore_test``."""
        if "users" in metadata:
            blocks = CheckedBlocks(reader, USERS_STREAM, metadata["users"])
            try:
                for _block in blocks:
                    pass
                report.checks.append(blocks.check())
            except (IntegrityError, NotFoundError) as exc:
                report.checks.append(
                    Check(
                        f"stream {USERS_STREAM} sha256", metadata["users"].get("sha256"), str(exc)
                    )
                )
        client, sandbox = self._client()
        with (
            translating(f"restore test on {self.server.address}"),
            self.server.connect() as admin,
        ):
            for name, entry in metadata.get("databases", {}).items():
                self.context.check_cancelled()
                scratch = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
                try:
                    _create(admin, scratch, entry)
                    try:
                        checks = self._load(
                            client, sandbox, reader, entry, scratch, disable_events=True
                        )
                    except (ToolError, IntegrityError, NotFoundError) as exc:
                        report.checks.append(Check(f"{name}: load dump", "completed", str(exc)))
                        continue
                    report.checks.extend(checks)
                    found = mysql_facts.gather(admin, scratch, "full", 0, entry)
                    report.checks.extend(mysql_facts.compare(name, entry, found))
                    checks, erased = erasure_test(name, partial(self.erase, name, scratch))
                    report.checks.extend(checks)
                    report.erasures.extend(erased)
                    changed = entry.get("changed_during_backup", [])
                    if changed:
                        report.notes.append(
                            f"{name}: {len(changed)} table(s) changed while the backup ran and "
                            f"were checked for presence only: {', '.join(changed[:10])}"
                        )
                finally:
                    self._drop(admin, scratch, report)
        report.erasures.extend(
            skipped_databases(
                self.context.erasures, metadata.get("databases", {}), target=report.target
            )
        )
        return report

    def _drop(self, admin: Connection, name: str, report: RestoreReport) -> None:
        try:
            mysql_facts.rows(admin, f"DROP DATABASE IF EXISTS {quote_name(name)}")
        except pymysql.MySQLError as exc:
            log.warning("could not drop database %s on %s: %s", name, self.server.address, exc)
            report.notes.append(f"could not drop database {name}: {exc}; drop it by hand")


def _exists(connection: Connection, name: str) -> bool:
    found = mysql_facts.rows(
        connection, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
    )
    return bool(found)


def _create(connection: Connection, name: str, entry: JsonObject) -> None:
    """``CREATE DATABASE`` with the recorded character set and collation."""
    statement = f"CREATE DATABASE {quote_name(name)}"
    for clause, key in (("CHARACTER SET", "character_set"), ("COLLATE", "collation")):
        value = entry.get(key)
        if value and _CHARSET_NAME.fullmatch(str(value)):
            statement += f" {clause} {value}"
    mysql_facts.rows(connection, statement)


def _counts_only(
    label: str, recorded: JsonObject, found: JsonObject, mode: mysql_facts.ChecksumMode
) -> list[Check]:
    checks = mysql_facts.compare(label, recorded, found)
    if mode == "full":
        return checks
    return [check for check in checks if not check.name.endswith(" checksum")]

"""The ``redis`` source: a Redis server as an RDB snapshot or key by key.

Backups: :mod:`strongroom.sources.redis.backup`; restores and restore tests:
:mod:`strongroom.sources.redis.restoring`. See ``docs/sources/redis.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from strongroom.config.resources import RedisResource
from strongroom.errors import ConfigError, ErasureError, SnapshotRefusedError
from strongroom.logs import get_logger
from strongroom.sources.base import (
    BackupResult,
    Description,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    StreamSink,
)
from strongroom.sources.redis import backup, erasing, facts, restoring, testing
from strongroom.sources.redis.client import RedisServer
from strongroom.sources.redis.cluster import primaries
from strongroom.sources.redis.target import RedisRestoreTarget
from strongroom.sources.targets import parse_target

_log = get_logger(__name__)


def _check_metadata(metadata: JsonObject) -> None:
    """Refuse metadata of another source or of a dry run (they describe no data)."""
    if metadata.get("format") != backup.FORMAT:
        raise ConfigError("this recovery point was not made by the redis source")
    if metadata.get("dry_run"):
        raise ConfigError("a dry-run backup holds no data to restore")


class RedisSource:
    """Backs up, restores and restore-tests a Redis server; see the module docstring.

    Given the resource settings and: ``connect_timeout`` (seconds), ``compare_sample``
    (the restore test compares every N-th key; 1 compares all) and ``ttl_tolerance_ms``
    (how far a restored expiry may be from the recorded one).
    """

    type_name: ClassVar[str] = "redis"

    def __init__(
        self,
        settings: RedisResource,
        *,
        connect_timeout: float = 10.0,
        compare_sample: int = 1,
        ttl_tolerance_ms: int = 1000,
    ) -> None:
        self.settings = settings
        self.connect_timeout = connect_timeout
        self.compare_sample = max(1, compare_sample)
        self.ttl_tolerance_ms = ttl_tolerance_ms

    def _server(self, settings: RedisResource | None = None) -> RedisServer:
        return RedisServer.from_settings(
            settings or self.settings, connect_timeout=self.connect_timeout
        )

    def describe(self, context: SourceContext) -> Description:
        """Name the server version, the mode and the databases a backup covers."""
        server = self._server()
        doing = f"reading {server.address}"
        with server.client() as client:
            found = facts.server_facts(client, doing)
            nodes = primaries(client, server.host, doing) if self.settings.mode == "cluster" else []
        if self.settings.mode == "snapshot":
            parts = [backup.RDB_STREAM]
        elif nodes:
            parts = [backup.cluster_stream(node.node_id) for node in nodes]
        else:
            numbers = self.settings.databases or [int(n) for n in found["keyspace"]]
            parts = [backup.database_stream(number) for number in numbers]
        return Description(
            summary=f"Redis {found['version']} at {server.address}, {self.settings.mode} mode: "
            f"{sum(found['keyspace'].values())} key(s) in {len(found['keyspace'])} database(s)",
            parts=parts,
            tools={"server": found["version"]},
        )

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        """Back up in the configured mode; return the metadata.

        Snapshot mode raises ``SnapshotRefusedError`` when the server refuses PSYNC, unless
        ``fallback_to_logical`` is set (the backup is then logical and says so). Raises
        ``AccessDeniedError`` (login refused, a command the ACL user may not run, named),
        ``NetworkError`` (unreachable, retryable), ``IntegrityError`` (an RDB failing its
        checks; nothing is committed).
        """
        server = self._server()
        if self.settings.mode == "snapshot":
            try:
                return BackupResult(metadata=backup.snapshot(server, context, sink))
            except SnapshotRefusedError as exc:
                if not self.settings.fallback_to_logical:
                    raise
                _log.warning("%s; backing up key by key (fallback_to_logical)", exc)
                metadata = backup.logical(self.settings, server, context, sink)
                metadata["fallback_reason"] = str(exc)
                return BackupResult(metadata=metadata)
        if self.settings.mode == "cluster":
            return BackupResult(metadata=backup.cluster(self.settings, server, context, sink))
        return BackupResult(metadata=backup.logical(self.settings, server, context, sink))

    def restore(
        self,
        context: SourceContext,
        reader: StreamReader,
        metadata: JsonObject,
        target: JsonObject,
    ) -> RestoreReport:
        """Restore as ``target`` says (see :class:`RedisRestoreTarget`).

        Raises ``ConfigError`` for a bad target, ``ConflictError`` when the target holds
        keys to restore and ``replace`` is off (nothing is written), ``UnsupportedError``
        when the target's Redis cannot read the backed-up payloads (both versions named).
        """
        _check_metadata(metadata)
        options = parse_target(RedisRestoreTarget, target, self.type_name)
        snapshot = metadata["mode"] == "snapshot"
        if options.path is not None:
            if not snapshot:
                raise ConfigError(
                    "path places an RDB for a cold start; this is a logical recovery point",
                    hint="Restore it into a live server (url) instead.",
                )
            if context.erasures:
                raise ErasureError(
                    "erasure requests cannot be re-applied to an RDB file placed for a cold "
                    "start; nothing was written",
                    hint="Restore into a live server (url) to have the requests re-applied.",
                )
            return restoring.place_rdb(reader, metadata, Path(options.path), context)
        server = self._server(options.server_settings(self.settings))
        if snapshot:
            report = restoring.restore_snapshot_live(reader, metadata, options, server, context)
        else:
            report = RestoreReport(target=f"redis://{server.address}")
            restoring.restore_logical(reader, metadata, options, server, context, report)
        if not context.dry_run:
            report.erasures.extend(erasing.erase(server, context.erasures, report.target))
        return report

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        """Restore into a scratch server on a free port, compare, stop it."""
        _check_metadata(metadata)
        if metadata["mode"] == "snapshot":
            return testing.test_snapshot(reader, metadata, context)
        return testing.test_logical(
            reader,
            metadata,
            context,
            sample=self.compare_sample,
            tolerance_ms=self.ttl_tolerance_ms,
        )

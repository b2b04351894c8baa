"""The ``kafka`` source: topics of an Apache Kafka cluster, record by record.

Backups: :mod:`strongroom.sources.kafka.backup`; restores:
:mod:`strongroom.sources.kafka.restoring`; restore tests:
:mod:`strongroom.sources.kafka.restore_check`. See ``docs/sources/kafka.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import confluent_kafka

from strongroom.config.resources import KafkaResource
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
from strongroom.sources.kafka import backup, restore_check, restoring
from strongroom.sources.kafka.checkpoints import Checkpoints
from strongroom.sources.kafka.client import Cluster
from strongroom.sources.kafka.target import KafkaRestoreTarget
from strongroom.sources.targets import parse_target


class KafkaSource:
    """Backs up, restores and restore-tests Kafka topics; see the module docstring.

    Given the resource settings, ``cache_path`` (the SQLite file of the per-partition
    checkpoints; without it every backup is full) and ``request_timeout``: seconds a
    request to the cluster may take before it fails (as unreachable, or with the error
    the client saw).
    """

    type_name: ClassVar[str] = "kafka"

    def __init__(
        self,
        settings: KafkaResource,
        *,
        cache_path: Path | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.checkpoints = None if cache_path is None else Checkpoints(cache_path)
        self.request_timeout = request_timeout

    def _cluster(self) -> Cluster:
        return Cluster.from_settings(self.settings, timeout=self.request_timeout)

    def describe(self, context: SourceContext) -> Description:
        """Name the topics and partitions a backup covers, and the client version."""
        cluster = self._cluster()
        topics = backup.select_topics(cluster, self.settings.topics)
        described = backup.describe_topics(cluster, topics)
        parts = [
            backup.partition_stream(topic, number)
            for topic in topics
            for number in range(described[topic]["partitions"])
        ]
        return Description(
            summary=f"{len(topics)} topic(s), {len(parts)} partition(s) on "
            f"{cluster.bootstrap_servers}",
            parts=parts,
            tools={"librdkafka": confluent_kafka.libversion()[0]},
        )

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        """Back up the selected topics, their metadata and the groups' offsets.

        Raises ``NotFoundError`` (a topic missing), ``AccessDeniedError`` (login or ACL
        refused), ``NetworkError`` (brokers unreachable, retryable).
        """
        previous = self.checkpoints.load() if self.checkpoints is not None else {}
        metadata = backup.backup(self.settings, self._cluster(), context, sink, previous)
        metadata["client"] = {"librdkafka": confluent_kafka.libversion()[0]}
        return BackupResult(metadata=metadata, events=backup.gap_events(metadata))

    def commit_checkpoint(self, metadata: JsonObject, point_id: str) -> None:
        """Start the next backup of each partition where the recorded point ``point_id`` ended."""
        if self.checkpoints is not None and not metadata.get("dry_run"):
            self.checkpoints.advance(metadata, point_id)

    def restore(
        self,
        context: SourceContext,
        reader: StreamReader,
        metadata: JsonObject,
        target: JsonObject,
    ) -> RestoreReport:
        """Restore as ``target`` says (see :class:`KafkaRestoreTarget`).

        Raises ``ConfigError`` for a bad target, ``ConflictError`` when a target partition
        holds records no restore wrote, a target topic has fewer partitions, or a group is
        active; ``NotFoundError`` for a missing topic with ``create_topics`` off.
        """
        check_restorable(metadata, backup.FORMAT, self.type_name)
        options = parse_target(KafkaRestoreTarget, target, self.type_name)
        return restoring.restore_topics(self._cluster(), reader, metadata, options, context)

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        """Restore into scratch topics and groups, compare each partition and group, delete them."""
        check_restorable(metadata, backup.FORMAT, self.type_name)
        return restore_check.restore_test(self._cluster(), reader, metadata, context)

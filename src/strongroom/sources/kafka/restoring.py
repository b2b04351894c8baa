"""Restores of Kafka recovery points, topic by topic, on top of their chain.

:func:`restore_topics` replays the earlier points of an incremental point's chain (see
:mod:`~strongroom.sources.kafka.chain`), restores the selected topics (see
:mod:`~strongroom.sources.kafka.restore`) and then the consumer groups' offsets. The
restore test is :mod:`~strongroom.sources.kafka.restore_check`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from confluent_kafka import TopicPartition

from strongroom.errors import ConfigError
from strongroom.logs import get_logger
from strongroom.sources.base import Check, JsonObject, RestoreReport, SourceContext, StreamReader
from strongroom.sources.kafka.chain import earlier_points
from strongroom.sources.kafka.client import Cluster
from strongroom.sources.kafka.restore import (
    Continues,
    ensure_topic,
    producer_compression,
    restore_partition,
    set_group_offsets,
    translate_offset,
)
from strongroom.sources.kafka.target import KafkaRestoreTarget

_log = get_logger(__name__)


def _until_ms(until: datetime | None) -> int | None:
    return None if until is None else int(until.timestamp() * 1000)


def selected_topics(metadata: JsonObject, options: KafkaRestoreTarget) -> list[str]:
    """The backed-up topics a restore covers; ``ConfigError`` for a topic not in the backup."""
    backed_up = sorted(metadata["topics"])
    unknown = sorted(set(options.topics) - set(backed_up))
    if unknown:
        raise ConfigError(
            f"topic(s) {', '.join(unknown)} are not in this recovery point",
            hint="It holds: " + ", ".join(backed_up) + ".",
        )
    return [topic for topic in backed_up if not options.topics or topic in options.topics]


def restore_topics(
    cluster: Cluster,
    reader: StreamReader,
    metadata: JsonObject,
    options: KafkaRestoreTarget,
    context: SourceContext,
    *,
    chain: bool = True,
) -> RestoreReport:
    """Restore the selected topics, then (``options.groups``) the groups' offsets.

    An incremental point is restored on top of its chain: with ``options.chain`` and a
    vault to open them from (``context.points``), the earlier points are replayed first,
    oldest first (each partition resumes where the target ends, so points already in
    the target cost one look at it); ``NotFoundError`` when one is missing. ``chain``
    off (a restore test, which checks this point's records alone) neither replays nor
    refuses; otherwise a point whose earlier records are not in the target is refused
    (``ConflictError`` naming the point to restore first).
    """
    report = RestoreReport(target=cluster.bootstrap_servers)
    topics = selected_topics(metadata, options)
    if chain and options.chain and context.points is not None and metadata.get("continues"):
        for earlier in earlier_points(metadata, context.points):
            covered = [topic for topic in topics if topic in earlier.metadata["topics"]]
            if not covered:
                continue
            with context.points(earlier.point_id) as (streams, _metadata):
                replayed = restore_point(
                    cluster, streams, earlier.metadata, covered, options, context, chain=True
                )
            report.notes.append(f"replayed the earlier point {earlier.point_id} of the chain")
            report.notes.extend(replayed.notes)
            report.checks.extend(
                Check(f"point {earlier.point_id[:12]}: {check.name}", check.expected, check.actual)
                for check in replayed.checks
            )
    restored = restore_point(cluster, reader, metadata, topics, options, context, chain=chain)
    report.notes.extend(restored.notes)
    report.checks.extend(restored.checks)
    if options.groups:
        restore_groups(cluster, metadata, topics, options, report)
    return report


def restore_point(
    cluster: Cluster,
    reader: StreamReader,
    metadata: JsonObject,
    topics: list[str],
    options: KafkaRestoreTarget,
    context: SourceContext,
    *,
    chain: bool,
) -> RestoreReport:
    """Restore ``topics`` of one point (no groups); ``chain``: refuse a missing earlier point."""
    report = RestoreReport(target=cluster.bootstrap_servers)
    until_ms = _until_ms(options.until)
    for topic in topics:
        described = metadata["topics"][topic]
        name = options.target_topic(topic)
        if ensure_topic(cluster, name, described, options.create_topics, options.retention_ms):
            report.notes.append(f"created topic {name} with {described['partitions']} partition(s)")
        elif options.retention_ms is None:
            report.notes.append(
                f"topic {name} existed: check its retention.ms, restored records keep "
                "their old timestamps and may be deleted at once"
            )
        for key, part in sorted(described["partition_data"].items(), key=lambda item: int(item[0])):
            continues = part.get("continues") or {}
            after = None
            if chain and continues.get("last_offset") is not None:
                after = Continues(continues["point"], int(continues["last_offset"]))
            whole = None
            if part.get("last_offset") is not None:
                whole = (int(part["last_offset"]), int(part["count"]))
            done = restore_partition(
                cluster,
                reader,
                part["stream"],
                (name, int(key)),
                until_ms,
                context,
                after,
                whole,
                producer_compression(described.get("configs") or {}),
            )
            report.checks.append(
                Check(
                    f"{name}/{key} records",
                    part["count"],
                    done.written + done.skipped_existing + done.skipped_after_until,
                )
            )
            report.notes.append(
                f"{name}/{key}: source offsets {part['first_offset']}..{part['last_offset']} -> "
                f"target offsets {done.first_target_offset}..{done.last_target_offset} "
                f"({done.written} written, {done.skipped_existing} already there, "
                f"{done.skipped_after_until} after until)"
            )
    return report


def restore_groups(
    cluster: Cluster,
    metadata: JsonObject,
    topics: list[str],
    options: KafkaRestoreTarget,
    report: RestoreReport,
    group_name: Callable[[str], str] = str,
) -> None:
    """Set every backed-up group's offsets on the restored topics, translated.

    ``group_name`` gives the name a backed-up group is restored under (a restore test
    sets scratch groups).
    """
    for backed_up, committed in sorted(metadata.get("groups", {}).items()):
        group = group_name(backed_up)
        partitions: list[TopicPartition] = []
        for topic, by_partition in sorted(committed.items()):
            if topic not in topics:
                continue
            name = options.target_topic(topic)
            for key, offset in sorted(by_partition.items(), key=lambda item: int(item[0])):
                target = translate_offset(cluster, name, int(key), int(offset))
                partitions.append(TopicPartition(name, int(key), target))
                report.notes.append(
                    f"group {backed_up}: {topic}/{key} offset {offset} -> {name}/{key} {target}"
                )
        if partitions:
            set_group_offsets(cluster, group, partitions)

"""The restore test of a Kafka recovery point: restore into scratch topics and compare.

:func:`restore_test` restores the point's topics into scratch topics
``strongroom-test-<token>-<topic>`` and its consumer groups into scratch groups
``strongroom-test-<token>-<group>`` (translated as a real restore does, by a binary search
over each restored partition), then reads every scratch partition back once, in full:

* per partition, the record count and the ordered content hash are compared with the ones
  the backup recorded;
* per group and partition, the offset the scratch group ended at is compared with the
  offset expected from the point's committed offset through the *offset map* that read
  builds (source offset, from the restore's header, to target offset): the first restored
  record at or after the committed source offset, else the partition's end. The two come
  from different reads, so a wrong translation is caught.

A failure names the topic and partition (and the group). Scratch topics and groups are
deleted on every path out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from strongroom.logs import get_logger
from strongroom.sources.base import Check, JsonObject, RestoreReport, SourceContext, StreamReader
from strongroom.sources.kafka.client import Cluster, check_message, offset_of
from strongroom.sources.kafka.records import ContentHash, Record, content_of
from strongroom.sources.kafka.restore import source_offset, watermarks
from strongroom.sources.kafka.restoring import restore_groups, restore_topics
from strongroom.sources.kafka.target import KafkaRestoreTarget

_log = get_logger(__name__)


@dataclass
class Scanned:
    """What reading a restored partition back found.

    ``content``: count and ordered hash of the records (the restore's header left out);
    ``translated``: for each committed source offset asked for, the target offset of the
    first record restored from a source offset at or after it (else the partition's end).
    """

    content: ContentHash = field(default_factory=ContentHash)
    translated: dict[int, int] = field(default_factory=dict)


def scan_partition(
    cluster: Cluster, topic: str, partition: int, committed: Iterable[int] = ()
) -> Scanned:
    """Read a restored partition whole; see :class:`Scanned`."""
    result = Scanned()
    pending = sorted(set(committed))
    low, high = watermarks(cluster, topic, partition)
    doing = f"reading back {topic}/{partition}"
    if high > low:
        with cluster.consumer(**{"isolation.level": "read_uncommitted"}) as consumer:
            consumer.assign([TopicPartition(topic, partition, low)])
            position = low
            idle = 0
            while position < high and idle < 120:
                messages = consumer.consume(min(10_000, high - position), timeout=1.0)
                idle = 0 if messages else idle + 1
                for message in messages:
                    check_message(cluster, message.error(), doing)
                    if message.error() is not None:
                        position = max(position, offset_of(message))
                        continue
                    record, source = _restored_record(message)
                    while pending and source is not None and source >= pending[0]:
                        result.translated[pending.pop(0)] = record.offset
                    result.content.add(content_of(record))
                    position = offset_of(message) + 1
    for offset in pending:
        result.translated[offset] = high
    return result


def _restored_record(message: Any) -> tuple[Record, int | None]:
    """A restored message as its record (the restore's header left out) and source offset."""
    timestamp_type, timestamp = message.timestamp()
    headers = [(str(name), value) for name, value in message.headers() or []]
    source = source_offset(headers)
    if source is not None:
        headers = headers[:-1]
    record = Record(
        message.offset(), timestamp_type, timestamp, message.key(), message.value(), headers
    )
    return record, source


def committed_offsets(cluster: Cluster, group: str) -> dict[tuple[str, int], int]:
    """Return a group's committed offsets by (topic, partition)."""
    admin = cluster.admin()
    futures = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=cluster.timeout
    )
    answer = cluster.wait(futures[group], f"reading offsets of group {group}")
    return {
        (partition.topic, partition.partition): partition.offset
        for partition in answer.topic_partitions or []
    }


def restore_test(
    cluster: Cluster, reader: StreamReader, metadata: JsonObject, context: SourceContext
) -> RestoreReport:
    """Restore into scratch topics and groups, compare, delete them; see the module docstring."""
    token = uuid.uuid4().hex[:8]
    topics = sorted(metadata["topics"])
    scratch = {topic: f"strongroom-test-{token}-{topic}"[:249] for topic in topics}
    groups: dict[str, dict[str, dict[str, int]]] = metadata.get("groups") or {}
    scratch_groups = {group: f"strongroom-test-{token}-{group}" for group in groups}
    options = KafkaRestoreTarget(topic_map=scratch, groups=False, retention_ms=-1)
    report = RestoreReport(target=f"scratch topics strongroom-test-{token}-*")
    try:
        restored = restore_topics(cluster, reader, metadata, options, context, chain=False)
        report.notes.extend(restored.notes)
        restore_groups(cluster, metadata, topics, options, report, scratch_groups.__getitem__)
        ended = {group: committed_offsets(cluster, name) for group, name in scratch_groups.items()}
        for topic in topics:
            partitions = metadata["topics"][topic]["partition_data"]
            for key, part in sorted(partitions.items(), key=lambda item: int(item[0])):
                wanted = {
                    group: int(by_topic[topic][key])
                    for group, by_topic in groups.items()
                    if key in by_topic.get(topic, {})
                }
                found = scan_partition(cluster, scratch[topic], int(key), wanted.values())
                report.checks.append(
                    Check(f"{topic}/{key} record count", part["count"], found.content.count)
                )
                report.checks.append(
                    Check(
                        f"{topic}/{key} ordered content sha256",
                        part["sha256"],
                        found.content.hexdigest(),
                    )
                )
                for group, offset in sorted(wanted.items()):
                    report.checks.append(
                        Check(
                            f"group {group} {topic}/{key} translated offset (source {offset})",
                            found.translated[offset],
                            ended[group].get((scratch[topic], int(key))),
                        )
                    )
    finally:
        _delete_scratch(cluster, list(scratch.values()), list(scratch_groups.values()))
    return report


def _delete_scratch(cluster: Cluster, topics: list[str], groups: list[str]) -> None:
    """Delete scratch topics and groups; log (never raise) what cannot be deleted."""
    admin = cluster.admin()
    futures = dict(admin.delete_topics(topics, request_timeout=60)) if topics else {}
    if groups:
        futures.update(admin.delete_consumer_groups(groups, request_timeout=60))
    for name, future in futures.items():
        try:
            future.result(timeout=60)
        except Exception as exc:  # noqa: BLE001 - a scratch thing never made is not a failure
            _log.warning("could not delete scratch topic or group %s: %s", name, exc)

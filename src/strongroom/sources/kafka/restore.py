"""A restore of Kafka topics: records to their partitions, in order, then the groups.

Per partition the records of its stream are produced, in order, to the same partition
of the target topic by an idempotent producer, with their key, value, headers and
original timestamp, plus a header ``strongroom.source-offset`` (the source offset,
decimal). That header makes a restore resumable and idempotent: before writing, the
last record of the target partition is read; if it carries the header, records up to
that source offset are skipped; if the partition holds records without it, the restore
is refused (:class:`ConflictError`), since it would mix with other data.

The consumer groups' offsets are translated afterwards: a committed source offset C
becomes the target offset of the first restored record whose source offset is at least
C (found by a binary search over the target partition, which is in source order), or the
partition's end. They are set only for a group with no member.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    TopicPartition,
)
from confluent_kafka.admin import NewTopic

from strongroom.errors import ConflictError, NotFoundError, TimeoutError_
from strongroom.sources.base import JsonObject, SourceContext, StreamReader
from strongroom.sources.kafka.client import Cluster, check_message
from strongroom.sources.kafka.records import iter_frames

SOURCE_OFFSET_HEADER: Final = "strongroom.source-offset"
_BUSY_GROUP_STATES: Final = frozenset(
    {
        ConsumerGroupState.STABLE,
        ConsumerGroupState.PREPARING_REBALANCING,
        ConsumerGroupState.COMPLETING_REBALANCING,
    }
)


@dataclass(frozen=True)
class Continues:
    """An incremental point's partition continues point ``point``, which ended at ``last_offset``."""

    point: str
    last_offset: int


@dataclass
class PartitionRestore:
    """What the restore of one partition did."""

    topic: str
    partition: int
    written: int = 0
    skipped_existing: int = 0
    skipped_after_until: int = 0
    first_target_offset: int | None = None
    last_target_offset: int | None = None
    errors: list[KafkaError] = field(default_factory=list)


def source_offset(headers: list[tuple[str, bytes | None]] | None) -> int | None:
    """The source offset a restored record carries in its last header, else ``None``."""
    if not headers:
        return None
    name, value = headers[-1]
    if name != SOURCE_OFFSET_HEADER or value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def read_one(cluster: Cluster, topic: str, partition: int, offset: int) -> Any:
    """Return the record at ``offset`` of a partition (or the next one after a gap), else ``None``."""
    doing = f"reading {topic}/{partition} at offset {offset}"
    with cluster.consumer(**{"isolation.level": "read_uncommitted"}) as consumer:
        consumer.assign([TopicPartition(topic, partition, offset)])
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is None:
                continue
            check_message(cluster, message.error(), doing)
            if message.error() is not None:
                return None
            return message
    return None


def watermarks(cluster: Cluster, topic: str, partition: int) -> tuple[int, int]:
    """Return a partition's (log start, high watermark)."""
    with cluster.consumer() as consumer:
        low, high = cluster.call(
            lambda: consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=cluster.timeout
            ),
            f"reading the offsets of {topic}/{partition}",
        )
    return int(low), int(high)


def resume_after(cluster: Cluster, topic: str, partition: int) -> tuple[int, int]:
    """Return the last source offset already restored into a partition (-1: none) and its end.

    The end is the partition's high watermark, where the next record written lands.
    Raises ``ConflictError`` when the partition holds records that no restore wrote.
    """
    low, high = watermarks(cluster, topic, partition)
    if high <= low:
        return -1, high
    message = read_one(cluster, topic, partition, high - 1)
    restored = None if message is None else source_offset(message.headers())
    if restored is None:
        raise ConflictError(
            f"topic {topic} partition {partition} already holds {high - low} record(s) "
            "that no strongroom restore wrote",
            hint="Restore into another topic (topic_map) or delete the records first.",
        )
    return restored, high


def ensure_topic(
    cluster: Cluster, name: str, described: JsonObject, create: bool, retention_ms: int | None
) -> bool:
    """Make sure topic ``name`` exists with at least the backed-up partition count.

    Returns True when it was created. Raises ``NotFoundError`` (missing, ``create`` off)
    or ``ConflictError`` (fewer partitions than backed up).
    """
    admin = cluster.admin()
    listed = cluster.call(lambda: admin.list_topics(timeout=cluster.timeout), "listing the topics")
    wanted = int(described["partitions"])
    existing = listed.topics.get(name)
    if existing is not None and existing.error is None:
        if len(existing.partitions) < wanted:
            raise ConflictError(
                f"topic {name} has {len(existing.partitions)} partition(s); the backup has {wanted}",
                hint="Restore into a new topic (topic_map): records keep their partitions.",
            )
        return False
    if not create:
        raise NotFoundError(f"topic {name} does not exist", hint="Set create_topics or create it.")
    configs = dict(described.get("configs") or {})
    if retention_ms is not None:
        configs["retention.ms"] = str(retention_ms)
    topic = NewTopic(
        name,
        num_partitions=wanted,
        replication_factor=int(described.get("replication_factor") or 1),
        config=configs,
    )
    futures = admin.create_topics([topic], request_timeout=60)
    cluster.wait(futures[name], f"creating topic {name}")
    wait_for_leaders(cluster, name, wanted)
    return True


def wait_for_leaders(cluster: Cluster, name: str, partitions: int) -> None:
    """Wait until every partition of a new topic has a leader (``TimeoutError_`` after ``timeout``)."""
    admin = cluster.admin()
    deadline = time.monotonic() + cluster.timeout
    while True:
        listed = cluster.call(
            lambda: admin.list_topics(name, timeout=cluster.timeout), f"reading topic {name}"
        )
        found = listed.topics.get(name)
        if (
            found is not None
            and found.error is None
            and len(found.partitions) >= partitions
            and all(part.leader >= 0 and part.error is None for part in found.partitions.values())
        ):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError_(
                f"topic {name} has partitions without a leader after {cluster.timeout:.0f} s"
            )
        time.sleep(0.2)


def producer_compression(configs: JsonObject) -> str:
    """The codec a restore produces a topic's records with, given its backed-up configs.

    The topic's own ``compression.type`` when it names a codec (the broker would otherwise
    decompress and compress every batch again), else none: the records were compressed
    in the vault, and compressing them again costs more CPU than the network it saves on
    a near broker.
    """
    configured = str(configs.get("compression.type") or "producer")
    return configured if configured in {"gzip", "snappy", "lz4", "zstd"} else "none"


def restore_partition(
    cluster: Cluster,
    reader: StreamReader,
    stream: str,
    target: tuple[str, int],
    until_ms: int | None,
    context: SourceContext,
    after: Continues | None = None,
    whole: tuple[int, int] | None = None,
    compression: str = "none",
) -> PartitionRestore:
    """Produce one partition's records into ``target`` (topic, partition), resuming.

    ``after``: the point continues an earlier one, whose records must be in the target
    already (``ConflictError`` naming that point otherwise). ``whole``: the stream's last
    source offset and record count; when the target already holds that offset the
    stream is not read at all (a chain replayed again, a finished restore run again).
    ``compression``: the producer's codec (see :func:`producer_compression`).
    """
    topic, partition = target
    result = PartitionRestore(topic, partition)
    done, target_end = resume_after(cluster, topic, partition)
    if whole is not None and done >= whole[0]:
        result.skipped_existing = whole[1]
        return result
    if after is not None and done < after.last_offset:
        raise ConflictError(
            f"{topic}/{partition}: this point continues point {after.point}, whose records up to "
            f"source offset {after.last_offset} are not in the target (it ends at {done})",
            hint=f"Restore point {after.point} (and the points it continues) first, oldest first.",
        )

    def failed(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            result.errors.append(error)

    # Delivery reports only for failures: the target offsets come from the partition's
    # end before and after (nothing else writes there, see resume_after), so a
    # successful record costs no callback.
    producer = cluster.producer(
        **{
            "enable.idempotence": True,
            "linger.ms": 50,
            "batch.size": 4_000_000,
            "batch.num.messages": 100_000,
            "compression.type": compression,
            "queue.buffering.max.kbytes": 65536,
            "delivery.report.only.error": True,
            "on_delivery": failed,
        }
    )
    produce: Callable[..., None] = producer.produce
    poll: Callable[[float], int] = producer.poll
    written = skipped_existing = skipped_after_until = 0
    with reader.open_stream(stream) as data:
        for offset, timestamp_type, timestamp, key, value, headers in iter_frames(data, stream):
            if offset <= done:
                skipped_existing += 1
                continue
            if until_ms is not None and timestamp > until_ms:
                skipped_after_until += 1
                continue
            headers.append((SOURCE_OFFSET_HEADER, str(offset).encode()))
            when = timestamp if timestamp_type != 0 else 0
            try:
                produce(topic, value, key, partition, timestamp=when, headers=headers)
            except BufferError:
                # The queue is full: serve delivery reports until it takes the record.
                while True:
                    poll(0.1)
                    try:
                        produce(topic, value, key, partition, timestamp=when, headers=headers)
                        break
                    except BufferError:
                        continue
            written += 1
            if written % 10_000 == 0:
                poll(0)
                context.check_cancelled()
                if result.errors:
                    break
    result.written = written
    result.skipped_existing = skipped_existing
    result.skipped_after_until = skipped_after_until
    doing = f"writing {topic}/{partition}"
    remaining = producer.flush(120)
    if result.errors:
        raise cluster.translate(result.errors[0], doing)
    if remaining:
        raise TimeoutError_(
            f"{doing}: {remaining} record(s) not acknowledged within 120 s",
            hint="Run the restore again: it resumes after the last record written.",
        )
    if written:
        result.first_target_offset = target_end
        result.last_target_offset = watermarks(cluster, topic, partition)[1] - 1
    return result


def translate_offset(cluster: Cluster, topic: str, partition: int, committed: int) -> int:
    """Return the target offset of the first restored record with source offset ≥ ``committed``.

    A binary search over the target partition (restored in source order); the
    partition's end when every restored record is before ``committed``.
    """
    low, high = watermarks(cluster, topic, partition)
    while low < high:
        middle = (low + high) // 2
        message = read_one(cluster, topic, partition, middle)
        found = None if message is None else source_offset(message.headers())
        if message is None or found is None or found >= committed:
            high = middle
        else:
            low = message.offset() + 1
    return low


def set_group_offsets(cluster: Cluster, group: str, offsets: list[TopicPartition]) -> None:
    """Set a group's committed offsets; ``ConflictError`` while the group has members."""
    admin = cluster.admin()
    described = admin.describe_consumer_groups([group], request_timeout=cluster.timeout)
    description = cluster.wait(described[group], f"describing group {group}")
    if description.state in _BUSY_GROUP_STATES or description.members:
        raise ConflictError(
            f"consumer group {group} is active ({len(description.members)} member(s)); "
            "its offsets were not set",
            hint="Stop the group's consumers, then run the restore again (it resumes).",
        )
    futures = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, offsets)], request_timeout=cluster.timeout
    )
    cluster.wait(futures[group], f"setting the offsets of group {group}")

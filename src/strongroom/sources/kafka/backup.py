"""A backup of Kafka topics: every partition's records, the topics' metadata, the groups.

Incremental: a partition with a checkpoint (see
:mod:`~strongroom.sources.kafka.checkpoints`) is read from it, and the point records the
points it continues (``continues``); a log that now starts past the checkpoint is a gap
(``gaps``, logged as a warning); a topic with a new id starts a new chain (``new_chains``).

One stream per partition, ``topics/<topic>/<partition>.records`` (see
:mod:`~strongroom.sources.kafka.records`), read with ``isolation.level=read_committed``
from its checkpoint (else its log start offset) up to its *last stable offset* taken when the
backup starts: aborted records and transaction markers are skipped by the client, offset
gaps of compacted topics are just gaps, and a partition is done when the client's
position reaches that end, so a backup never waits for offsets that will never come.
Records written after the start belong to the next backup.

The metadata records per topic its id, partition count, replication factor and every
config set on the topic; per partition the offset range read, the record count and the
ordered content hash; and the committed offsets of every consumer group on those topics.
"""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime
from typing import Any, Final

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import ConfigResource, ConfigSource, OffsetSpec

from strongroom.catalog.event_types import GAP_DETECTED
from strongroom.config.resources import KafkaResource
from strongroom.errors import NotFoundError, TimeoutError_
from strongroom.logs import get_logger
from strongroom.sources.base import JsonObject, SourceContext, SourceEvent, StreamSink
from strongroom.sources.kafka.checkpoints import Checkpoint
from strongroom.sources.kafka.client import Cluster, check_message, offset_of
from strongroom.sources.kafka.records import ContentHash, content_bytes, frame_head, hash_head

FORMAT: Final = "strongroom-kafka"
VERSION: Final = 1
BATCH: Final = 5_000
_log = get_logger(__name__)
IDLE_POLLS: Final = 120
"""Empty one-second polls after which a partition that has not reached its end fails."""


def partition_stream(topic: str, partition: int) -> str:
    """The stream name of one partition's records."""
    return f"topics/{topic}/{partition}.records"


def now() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()


def select_topics(cluster: Cluster, patterns: list[str]) -> list[str]:
    """Return the topics that names or shell-style patterns select, sorted.

    Internal topics (``__consumer_offsets`` …) are never selected by a pattern. Raises
    ``NotFoundError`` for a name or a pattern that selects nothing.
    """
    admin = cluster.admin()
    listed = cluster.call(lambda: admin.list_topics(timeout=cluster.timeout), "listing the topics")
    existing = sorted(name for name in listed.topics if not name.startswith("__"))
    chosen: set[str] = set()
    for pattern in patterns:
        matches = [name for name in existing if fnmatch.fnmatchcase(name, pattern)]
        if pattern in listed.topics:
            matches = [pattern]
        if not matches:
            raise NotFoundError(
                f"topic {pattern!r} does not exist on {cluster.bootstrap_servers}",
                hint="Check the resource's topics (names or patterns such as 'orders.*').",
            )
        chosen.update(matches)
    return sorted(chosen)


def describe_topics(cluster: Cluster, topics: list[str]) -> dict[str, JsonObject]:
    """Return each topic's id, partition count, replication factor and topic-level configs."""
    admin = cluster.admin()
    described = admin.describe_topics(TopicCollection(topics), request_timeout=cluster.timeout)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic) for topic in topics]
    configs = admin.describe_configs(resources, request_timeout=cluster.timeout)
    result: dict[str, JsonObject] = {}
    for topic in topics:
        description = cluster.wait(described[topic], f"describing topic {topic}")
        entries = cluster.wait(
            configs[ConfigResource(ConfigResource.Type.TOPIC, topic)], f"reading configs of {topic}"
        )
        result[topic] = {
            "topic_id": str(description.topic_id),
            "partitions": len(description.partitions),
            "replication_factor": min(len(p.replicas) for p in description.partitions),
            "configs": {
                name: entry.value
                for name, entry in sorted(entries.items())
                if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
                and not entry.is_sensitive
            },
        }
    return result


def offsets(
    cluster: Cluster, partitions: list[TopicPartition], spec: OffsetSpec
) -> dict[tuple[str, int], int]:
    """Return an offset per partition: log start (``earliest``) or last stable (``latest``)."""
    if not partitions:
        return {}
    admin = cluster.admin()
    futures = admin.list_offsets(
        dict.fromkeys(partitions, spec),
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=cluster.timeout,
    )
    return {
        (partition.topic, partition.partition): cluster.wait(
            future, f"reading offsets of {partition.topic}/{partition.partition}"
        ).offset
        for partition, future in futures.items()
    }


def group_offsets(cluster: Cluster, topics: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    """Return the committed offsets of every consumer group on ``topics``: group -> topic -> partition -> offset."""
    admin = cluster.admin()
    listed = cluster.wait(
        admin.list_consumer_groups(request_timeout=cluster.timeout), "listing consumer groups"
    )
    wanted = set(topics)
    result: dict[str, dict[str, dict[str, int]]] = {}
    for listing in sorted(listed.valid, key=lambda item: item.group_id):
        group = listing.group_id
        futures = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=cluster.timeout
        )
        answer = cluster.wait(futures[group], f"reading offsets of group {group}")
        for partition in answer.topic_partitions or []:
            if partition.topic in wanted and partition.offset >= 0:
                topic = result.setdefault(group, {}).setdefault(partition.topic, {})
                topic[str(partition.partition)] = partition.offset
    return result


def encode_batch(
    messages: list[Any], end: int, frames: list[bytes], hashed: list[bytes]
) -> tuple[int, int | None, int | None, KafkaError | None]:
    """Encode consumed messages with offsets below ``end`` into frames and hash input.

    Appends to ``frames`` each record's frame (see :mod:`~strongroom.sources.kafka.records`)
    and to ``hashed`` its :func:`hash_head` and content. Returns the position after the
    batch (-1: no record and no end-of-partition), the first and last offsets written, and
    the first error a message carried (the caller translates it). This is the backup's
    per-record loop, so it reads each field once and builds no object per record.
    """
    position = -1
    first = last = None
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                return position, first, last, error
            position = max(position, offset_of(message))  # end of partition: its offset
            continue
        offset = message.offset()
        if offset >= end:
            return end, first, last, None
        timestamp_type, timestamp = message.timestamp()
        content = content_bytes(
            timestamp_type, timestamp, message.key(), message.value(), message.headers()
        )
        size = len(content)
        frames.append(frame_head(offset, size))
        frames.append(content)
        hashed.append(hash_head(size))
        hashed.append(content)
        if first is None:
            first = offset
        last = offset
        position = offset + 1
    return position, first, last, None


def read_partition(
    cluster: Cluster,
    consumer: Consumer,
    topic: str,
    partition: int,
    start: int,
    end: int,
    context: SourceContext,
    sink: StreamSink,
) -> JsonObject:
    """Write records ``start`` ≤ offset < ``end`` of one partition into its stream.

    ``consumer`` is shared by the partitions of a backup (one connection, not one per
    partition): it is assigned this partition alone while it is read.
    Returns the partition's metadata (range, count, content hash, first and last offset).
    Raises the typed errors of :meth:`Cluster.translate`; ``TimeoutError_`` when the
    partition does not reach ``end`` after :data:`IDLE_POLLS` empty polls.
    """
    doing = f"reading {topic}/{partition}"
    content = ContentHash()
    first = last = None
    size = 0
    with sink.open_stream(partition_stream(topic, partition)) as stream:
        position = start
        if start < end:
            consumer.assign([TopicPartition(topic, partition, start)])
        idle = 0
        while position < end:
            context.check_cancelled()
            # consume() waits its whole timeout for a full batch: ask for no more than is left.
            messages = consumer.consume(min(BATCH, end - position), timeout=1.0)
            idle = 0 if messages else idle + 1
            frames: list[bytes] = []
            hashed: list[bytes] = []
            reached, batch_first, batch_last, error = encode_batch(messages, end, frames, hashed)
            if error is not None:
                check_message(cluster, error, doing)
            position = max(position, reached)
            if batch_last is not None:
                first = batch_first if first is None else first
                last = batch_last
            if frames:
                data = b"".join(frames)
                content.add_joined(b"".join(hashed), len(frames) // 2)
                stream.write(data)
                size += len(data)
                context.progress(len(data))
            if position < end and not messages:
                # Past aborted records and transaction markers the client's position moves
                # without handing out a message.
                (current,) = consumer.position([TopicPartition(topic, partition)])
                position = max(position, current.offset)
                if idle >= IDLE_POLLS and position < end:
                    raise TimeoutError_(
                        f"{doing}: stuck at offset {position}, the end taken at the start is {end}"
                    )
        if start < end:
            consumer.unassign()  # drops what it prefetched of this partition
    return {
        "stream": partition_stream(topic, partition),
        "start": start,
        "end": end,
        "count": content.count,
        "sha256": content.hexdigest(),
        "first_offset": first,
        "last_offset": last,
        "bytes": size,
    }


def start_offsets(
    described: dict[str, JsonObject],
    log_start: dict[tuple[str, int], int],
    stable_end: dict[tuple[str, int], int],
    previous: dict[tuple[str, int], Checkpoint],
) -> tuple[dict[tuple[str, int], int], JsonObject]:
    """Return where each partition's backup starts, and what the chain of points says.

    A partition continues from its checkpoint when the topic id is the same and the log
    still starts at or before it; otherwise it starts at the log start and the returned
    ``chain`` says why: ``gaps`` (retention deleted records before they were read) and
    ``new_chains`` (the topic was deleted and created again, or has no checkpoint).
    """
    starts: dict[tuple[str, int], int] = {}
    continues: set[str] = set()
    gaps: list[JsonObject] = []
    new_chains: list[str] = []
    for (topic, partition), first in log_start.items():
        checkpoint = previous.get((topic, partition))
        topic_id = described[topic]["topic_id"]
        part = described[topic].setdefault("partition_data", {}).setdefault(str(partition), {})
        if checkpoint is None:
            starts[(topic, partition)] = first
        elif checkpoint.topic_id != topic_id:
            starts[(topic, partition)] = first
            note = f"topic {topic} has a new id ({checkpoint.topic_id} -> {topic_id}): it was deleted and created again; a new chain starts"
            if note not in new_chains:
                new_chains.append(note)
        elif checkpoint.next_offset > stable_end[(topic, partition)]:
            starts[(topic, partition)] = first
            new_chains.append(
                f"{topic}/{partition} ends at {stable_end[(topic, partition)]}, before the checkpoint "
                f"{checkpoint.next_offset}: a new chain starts"
            )
        else:
            starts[(topic, partition)] = max(first, checkpoint.next_offset)
            continues.add(checkpoint.point_id)
            part["continues"] = {
                "point": checkpoint.point_id,
                "last_offset": checkpoint.last_offset,
            }
            if first > checkpoint.next_offset:
                gap = {
                    "topic": topic,
                    "partition": partition,
                    "from": checkpoint.next_offset,
                    "to": first,
                }
                gaps.append(gap)
                _log.warning(
                    "gap in %s/%s: offsets %s to %s were deleted (retention) before a backup read them",
                    topic, partition, checkpoint.next_offset, first,
                )  # fmt: skip
    chain = {"continues": sorted(continues), "gaps": gaps, "new_chains": new_chains}
    return starts, chain


def gap_events(metadata: JsonObject) -> list[SourceEvent]:
    """One ``backup.gap_detected`` event per gap a backup recorded (see :func:`start_offsets`)."""
    return [
        SourceEvent(
            GAP_DETECTED,
            {
                "topic": gap["topic"],
                "partition": gap["partition"],
                "from_offset": gap["from"],
                "to_offset": gap["to"],
            },
        )
        for gap in metadata.get("gaps") or []
    ]


def backup(
    settings: KafkaResource,
    cluster: Cluster,
    context: SourceContext,
    sink: StreamSink,
    previous: dict[tuple[str, int], Checkpoint] | None = None,
) -> JsonObject:
    """Back up the selected topics and the groups' offsets; return the metadata.

    Raises ``NotFoundError`` for a topic that does not exist, ``AccessDeniedError`` for a
    refused login or ACL, ``NetworkError`` (retryable) for unreachable brokers.
    """
    started = now()
    topics = select_topics(cluster, settings.topics)
    described = describe_topics(cluster, topics)
    partitions = [
        TopicPartition(topic, number)
        for topic in topics
        for number in range(described[topic]["partitions"])
    ]
    metadata: JsonObject = {
        "format": FORMAT,
        "version": VERSION,
        "started_at": started,
        "bootstrap_servers": cluster.bootstrap_servers,
        "topics": described,
    }
    if context.dry_run:
        return {**metadata, "dry_run": True}
    log_start = offsets(cluster, partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
    stable_end = offsets(cluster, partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
    groups = group_offsets(cluster, topics) if settings.consumer_group_offsets else {}
    starts, chain = start_offsets(described, log_start, stable_end, previous or {})
    with cluster.consumer() as consumer:
        for topic in topics:
            for number in range(described[topic]["partitions"]):
                part = described[topic]["partition_data"][str(number)]
                part.update(
                    read_partition(
                        cluster,
                        consumer,
                        topic,
                        number,
                        starts[(topic, number)],
                        stable_end[(topic, number)],
                        context,
                        sink,
                    )
                )
                part["log_start"] = log_start[(topic, number)]
    metadata["incremental"] = bool(chain["continues"])
    metadata.update(chain)
    metadata["groups"] = groups
    metadata["records"] = sum(
        part["count"] for topic in described.values() for part in topic["partition_data"].values()
    )
    metadata["finished_at"] = now()
    return metadata

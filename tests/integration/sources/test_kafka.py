"""The ``kafka`` source against the real broker of dev/services (Apache Kafka 4, KRaft).

Records are written and read back by ``kcat`` (an independent client) where it can, and by
confluent-kafka where kcat cannot (transactions, null versus empty values). Every test
makes topics and groups of its own, with unique names, and deletes them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strongroom.config.resources import KafkaResource
from strongroom.errors import AccessDeniedError, ConflictError, NetworkError, NotFoundError
from strongroom.sources.base import JsonObject, PointOpener, SourceContext, StreamReader
from strongroom.sources.kafka import restoring
from strongroom.sources.kafka.source import KafkaSource
from tests.support.services import KafkaService, unique_name
from tests.support.source_fakes import MemoryReader, MemorySink

pytestmark = pytest.mark.integration

KCAT_FORMAT = "%p|%o|%k|%s|%h|%T\\n"
SOURCE_HEADER = "strongroom.source-offset"


@pytest.fixture
def context(tmp_path: Path) -> SourceContext:
    return SourceContext(scratch=tmp_path)


@pytest.fixture
def names(kafka_service: KafkaService) -> Iterator[list[str]]:
    """Topic names the test may create; every one of them is deleted afterwards."""
    created: list[str] = []
    yield created
    admin = kafka_service.connect()
    existing = set(admin.list_topics(timeout=30).topics)
    doomed = sorted({name for name in created if name in existing})
    if doomed:
        for future in admin.delete_topics(doomed).values():
            future.result(60)


def create(admin: AdminClient, names: list[str], name: str, partitions: int, **config: str) -> str:
    names.append(name)
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)
    admin.create_topics([topic])[name].result(60)
    return name


def delete_topics(admin: AdminClient, *topics: str) -> None:
    """Delete topics and wait until their names are free (the broker deletes asynchronously)."""
    for future in admin.delete_topics(list(topics)).values():
        future.result(60)
    for _ in range(240):
        if not set(topics) & set(admin.list_topics(timeout=30).topics):
            return
        subprocess.run(["sleep", "0.5"], check=True)


def resource(kafka_service: KafkaService, *topics: str) -> KafkaResource:
    return KafkaResource(
        type="kafka", bootstrap_servers=[kafka_service.bootstrap], topics=list(topics)
    )


def kcat_read(kafka_service: KafkaService, topic: str) -> list[str]:
    """Every record of a topic as kcat prints it, the restore's header left out, sorted by partition and offset."""
    printed = subprocess.run(
        ["kcat", "-C", "-b", kafka_service.bootstrap, "-t", topic, "-e", "-q", "-Z",
         "-X", "isolation.level=read_committed", "-f", KCAT_FORMAT],
        check=True, capture_output=True, timeout=120, text=True,
    ).stdout  # fmt: skip
    lines = []
    for line in printed.splitlines():
        partition, offset, key, value, headers, timestamp = line.split("|")
        kept = ",".join(h for h in headers.split(",") if h and not h.startswith(SOURCE_HEADER))
        lines.append((int(partition), int(offset), f"{key}|{value}|{kept}|{timestamp}"))
    return [text for _, _, text in sorted(lines)]


def kcat_write(kafka_service: KafkaService, topic: str, partition: int, lines: list[str]) -> None:
    subprocess.run(
        ["kcat", "-P", "-b", kafka_service.bootstrap, "-t", topic, "-p", str(partition), "-K", ":",
         "-H", "trace=a", "-H", "trace=b", "-H", "empty="],
        input="\n".join(lines).encode() + b"\n", check=True, timeout=120,
    )  # fmt: skip


def committed(kafka_service: KafkaService, group: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer(kafka_service.client_config(**{"group.id": group}))
    try:
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=30
        )
    finally:
        consumer.close()
    return [partition.offset for partition in found]


def commit(kafka_service: KafkaService, group: str, offsets: list[TopicPartition]) -> None:
    consumer = Consumer(kafka_service.client_config(**{"group.id": group}))
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def test_topics_round_trip_with_transactions_compaction_and_group_offsets(
    kafka_service: KafkaService, names: list[str], context: SourceContext
) -> None:
    admin = kafka_service.connect()
    plain = create(admin, names, unique_name("sr-plain"), 3, **{"retention.ms": "604800000"})
    compacted = create(admin, names, unique_name("sr-compact"), 1, **{"cleanup.policy": "compact"})
    transactional = create(admin, names, unique_name("sr-txn"), 2)
    for partition in range(3):
        kcat_write(kafka_service, plain, partition, [f"k{partition}-{n}:v{n}" for n in range(50)])
    producer = Producer(kafka_service.client_config())
    producer.produce(compacted, key=b"same", value=b"first")
    producer.produce(compacted, key=b"same", value=None)  # a tombstone: null, not empty
    producer.produce(compacted, key=b"", value=b"")  # empty key and value
    producer.flush(60)
    writer = Producer(kafka_service.client_config(**{"transactional.id": transactional}))
    writer.init_transactions(60)
    for round_number, keep in ((1, True), (2, False), (3, True)):
        writer.begin_transaction()
        for partition in range(2):
            writer.produce(transactional, value=f"r{round_number}".encode(), partition=partition)
        if keep:
            writer.commit_transaction(60)
        else:
            writer.abort_transaction(60)
    # The last commit's markers land after commit_transaction returns: wait for them, so
    # that every committed record is below the last stable offset the backup reads up to.
    for _ in range(120):
        if len(kcat_read(kafka_service, transactional)) == 4:
            break
    group = unique_name("sr-group")
    commit(kafka_service, group, [TopicPartition(plain, 0, 20), TopicPartition(plain, 1, 50)])
    before = {topic: kcat_read(kafka_service, topic) for topic in (plain, compacted, transactional)}

    source = KafkaSource(resource(kafka_service, "sr-plain_*", compacted, transactional))
    sink = MemorySink()
    # The plain pattern may match other runs' topics: back up only this test's.
    source.settings = resource(kafka_service, plain, compacted, transactional)
    metadata = source.backup(context, sink).metadata

    assert metadata["records"] == 150 + 3 + 4, {
        t: {p: (d["start"], d["end"], d["count"]) for p, d in v["partition_data"].items()}
        for t, v in metadata["topics"].items()
    }
    assert metadata["topics"][plain]["configs"] == {"retention.ms": "604800000"}
    assert metadata["topics"][transactional]["partition_data"]["0"]["count"] == 2
    assert sorted(sink.streams) == sorted(
        [f"topics/{plain}/{p}.records" for p in range(3)]
        + [f"topics/{compacted}/0.records"]
        + [f"topics/{transactional}/{p}.records" for p in range(2)]
    )
    assert metadata["groups"][group] == {plain: {"0": 20, "1": 50}}

    delete_topics(admin, plain, compacted, transactional)
    admin.delete_consumer_groups([group])[group].result(60)

    report = source.restore(context, MemoryReader(sink.streams), metadata, {})
    assert report.ok, report.failures
    after = {topic: kcat_read(kafka_service, topic) for topic in (plain, compacted, transactional)}
    assert after == before
    # The transactional topic restored without its markers: 2 records per partition.
    assert committed(kafka_service, group, plain, 2) == [20, 50]

    # Again: idempotent, nothing written twice.
    again = source.restore(context, MemoryReader(sink.streams), metadata, {})
    assert again.ok
    assert kcat_read(kafka_service, plain) == before[plain]


def test_a_restore_cut_short_resumes_without_duplicates_and_translates_offsets(
    kafka_service: KafkaService, names: list[str], context: SourceContext
) -> None:
    admin = kafka_service.connect()
    topic = create(admin, names, unique_name("sr-resume"), 2)
    producer = Producer(kafka_service.client_config())
    for number in range(400):
        producer.produce(
            topic, value=f"v{number}".encode(), partition=number % 2, timestamp=1_000_000 + number
        )
    producer.flush(60)
    # Delete the first 50 records of partition 0: its log starts at 50, a gap before it.
    admin.delete_records([TopicPartition(topic, 0, 50)])[TopicPartition(topic, 0, 50)].result(60)
    group = unique_name("sr-group")
    commit(kafka_service, group, [TopicPartition(topic, 0, 10), TopicPartition(topic, 1, 120)])
    source = KafkaSource(resource(kafka_service, topic))
    sink = MemorySink()
    metadata = source.backup(context, sink).metadata
    assert metadata["topics"][topic]["partition_data"]["0"]["start"] == 50
    admin.delete_consumer_groups([group])[group].result(60)

    renamed = unique_name("sr-renamed")
    names.append(renamed)
    # A restore stopped halfway: only records up to a time, as a killed one would leave it.
    halfway = {
        "topic_map": {topic: renamed},
        "until": "1970-01-01T00:16:40.200+00:00",
        "groups": False,
    }
    source.restore(context, MemoryReader(sink.streams), metadata, halfway)
    # Up to n = 200: 101 on partition 0 less the 50 deleted, 100 on partition 1.
    assert len(kcat_read(kafka_service, renamed)) == 151
    report = source.restore(
        context, MemoryReader(sink.streams), metadata, {"topic_map": {topic: renamed}}
    )
    assert report.ok, report.failures

    restored = kcat_read(kafka_service, renamed)
    assert len(restored) == 350
    assert len(set(restored)) == 350
    # Partition 0 starts at source offset 50: a committed 10 maps to the first record.
    assert committed(kafka_service, group, renamed, 2) == [0, 120]

    test = source.restore_test(context, MemoryReader(sink.streams), metadata)
    assert test.ok, test.failures
    assert [(c.name, c.expected, c.actual) for c in test.checks if c.name.startswith("group")] == [
        (f"group {group} {topic}/0 translated offset (source 10)", 0, 0),
        (f"group {group} {topic}/1 translated offset (source 120)", 120, 120),
    ]
    assert not [
        name
        for name in admin.list_topics(timeout=30).topics
        if "strongroom-test-" in name and topic in name
    ]
    listed = admin.list_consumer_groups().result(60)
    assert not [g.group_id for g in listed.valid if g.group_id.endswith(f"-{group}")]


def test_a_restore_test_fails_naming_the_group_whose_translated_offset_is_wrong(
    kafka_service: KafkaService,
    names: list[str],
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = kafka_service.connect()
    topic = create(admin, names, unique_name("sr-offsets"), 2)
    for partition in range(2):
        kcat_write(kafka_service, topic, partition, [f"k{n}:v{n}" for n in range(20)])
    group = unique_name("sr-group")
    commit(kafka_service, group, [TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 7)])
    source = KafkaSource(resource(kafka_service, topic))
    sink = MemorySink()
    metadata = source.backup(context, sink).metadata

    # A fault in the translation (one record too far on partition 1): the restore test
    # compares against the offset map it reads back itself, so it catches it.
    translate = restoring.translate_offset

    def one_too_far(cluster: Any, name: str, partition: int, committed: int) -> int:
        return translate(cluster, name, partition, committed) + (partition == 1)

    monkeypatch.setattr(restoring, "translate_offset", one_too_far)
    test = source.restore_test(context, MemoryReader(sink.streams), metadata)
    assert not test.ok
    assert [(c.name, c.expected, c.actual) for c in test.failures] == [
        (f"group {group} {topic}/1 translated offset (source 7)", 7, 8)
    ]


def test_bad_input_gives_typed_errors(
    kafka_service: KafkaService,
    names: list[str],
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = kafka_service.connect()
    missing = unique_name("sr-missing")
    with pytest.raises(NotFoundError, match=missing):
        KafkaSource(resource(kafka_service, missing)).backup(context, MemorySink())

    unreachable = KafkaResource(type="kafka", bootstrap_servers=["127.0.0.1:1"], topics=["x"])
    with pytest.raises(NetworkError) as raised:
        KafkaSource(unreachable, request_timeout=10).backup(context, MemorySink())
    assert raised.value.retryable

    monkeypatch.setenv("STRONGROOM_TEST_KAFKA_WRONG", "wrong-password")
    refused = KafkaResource(
        type="kafka",
        bootstrap_servers=[kafka_service.sasl_bootstrap],
        topics=["x"],
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        username=kafka_service.user,
        password="env:STRONGROOM_TEST_KAFKA_WRONG",
    )
    with pytest.raises(AccessDeniedError):
        KafkaSource(refused, request_timeout=10).backup(context, MemorySink())

    topic = create(admin, names, unique_name("sr-bad"), 1)
    kcat_write(kafka_service, topic, 0, ["a:1", "b:2"])
    source = KafkaSource(resource(kafka_service, topic))
    sink = MemorySink()
    metadata = source.backup(context, sink).metadata
    holding = create(admin, names, unique_name("sr-holding"), 1)
    kcat_write(kafka_service, holding, 0, ["other:record"])
    with pytest.raises(ConflictError, match="no strongroom restore wrote"):
        source.restore(
            context, MemoryReader(sink.streams), metadata, {"topic_map": {topic: holding}}
        )
    assert kcat_read(kafka_service, holding)[0].startswith("other|record")

    fewer = create(admin, names, unique_name("sr-fewer"), 1)
    wide = create(admin, names, unique_name("sr-wide"), 2)
    wide_metadata = (
        KafkaSource(resource(kafka_service, wide)).backup(context, MemorySink()).metadata
    )
    with pytest.raises(ConflictError, match="partition"):
        KafkaSource(resource(kafka_service, wide)).restore(
            context, MemoryReader({}), wide_metadata, {"topic_map": {wide: fewer}}
        )

    group = unique_name("sr-active")
    commit(kafka_service, group, [TopicPartition(topic, 0, 1)])
    metadata = source.backup(context, MemorySink()).metadata
    member = Consumer(
        kafka_service.client_config(**{"group.id": group, "session.timeout.ms": 45000})
    )
    member.subscribe([topic])
    try:
        for _ in range(60):
            member.poll(1.0)
            if member.assignment():
                break
        target = unique_name("sr-target")
        names.append(target)
        with pytest.raises(ConflictError, match="active"):
            source.restore(
                context, MemoryReader(sink.streams), metadata, {"topic_map": {topic: target}}
            )
    finally:
        member.close()


def test_incremental_backups_continue_from_recorded_checkpoints_and_restore_as_a_chain(
    kafka_service: KafkaService, names: list[str], context: SourceContext, tmp_path: Path
) -> None:
    admin = kafka_service.connect()
    topic = create(admin, names, unique_name("sr-chain"), 2)
    for partition in range(2):
        kcat_write(kafka_service, topic, partition, [f"a{n}:first-{n}" for n in range(10)])
    source = KafkaSource(resource(kafka_service, topic), cache_path=tmp_path / "checkpoints.sqlite")

    first_sink = MemorySink()
    first = source.backup(context, first_sink).metadata
    assert (first["records"], first["incremental"], first["continues"]) == (20, False, [])
    # Not recorded (no commit_checkpoint): the next backup reads the same records again.
    assert source.backup(context, MemorySink()).metadata["records"] == 20
    source.commit_checkpoint(first, "point-one")

    for partition in range(2):
        kcat_write(kafka_service, topic, partition, [f"b{n}:second-{n}" for n in range(5)])
    second_sink = MemorySink()
    second = source.backup(context, second_sink).metadata
    assert (second["records"], second["incremental"], second["continues"]) == (
        10,
        True,
        ["point-one"],
    )
    part = second["topics"][topic]["partition_data"]["0"]
    assert (part["start"], part["end"], part["continues"]) == (
        10,
        15,
        {"point": "point-one", "last_offset": 9},
    )
    source.commit_checkpoint(second, "point-two")

    renamed = unique_name("sr-chain-restored")
    names.append(renamed)
    target = {"topic_map": {topic: renamed}, "groups": False}
    with pytest.raises(ConflictError, match="point-one"):
        source.restore(context, MemoryReader(second_sink.streams), second, target)
    source.restore(context, MemoryReader(first_sink.streams), first, target)
    source.restore(context, MemoryReader(second_sink.streams), second, target)
    assert kcat_read(kafka_service, renamed) == kcat_read(kafka_service, topic)
    assert source.restore_test(context, MemoryReader(second_sink.streams), second).ok

    # Retention deleted records before a backup read them: a gap, recorded.
    kcat_write(kafka_service, topic, 0, [f"c{n}:third-{n}" for n in range(5)])
    admin.delete_records([TopicPartition(topic, 0, 18)])[TopicPartition(topic, 0, 18)].result(60)
    third_result = source.backup(context, MemorySink())
    third = third_result.metadata
    assert third["gaps"] == [{"topic": topic, "partition": 0, "from": 15, "to": 18}]
    assert [(event.type, event.details) for event in third_result.events] == [
        (
            "backup.gap_detected",
            {"topic": topic, "partition": 0, "from_offset": 15, "to_offset": 18},
        )
    ]
    assert third["records"] == 2
    source.commit_checkpoint(third, "point-three")

    # The topic deleted and created again: a new id, a new chain, said so.
    delete_topics(admin, topic)
    create(admin, names, topic, 2)
    kcat_write(kafka_service, topic, 1, ["d:fourth"])
    fourth = source.backup(context, MemorySink()).metadata
    assert (fourth["records"], fourth["incremental"], fourth["continues"]) == (1, False, [])
    assert len(fourth["new_chains"]) == 1 and "new id" in fourth["new_chains"][0]


def memory_points(points: dict[str, tuple[MemorySink, JsonObject]]) -> PointOpener:
    """A vault of points kept in memory: opens a point's streams and metadata by id."""

    @contextmanager
    def open_point(point_id: str) -> Iterator[tuple[StreamReader, JsonObject]]:
        if point_id not in points:
            raise NotFoundError(f"recovery point {point_id} does not exist")
        sink, metadata = points[point_id]
        yield MemoryReader(sink.streams), metadata

    return open_point


def test_restoring_the_newest_point_replays_its_chain_oldest_first(
    kafka_service: KafkaService, names: list[str], context: SourceContext, tmp_path: Path
) -> None:
    admin = kafka_service.connect()
    topic = create(admin, names, unique_name("sr-replay"), 2)
    source = KafkaSource(resource(kafka_service, topic), cache_path=tmp_path / "checkpoints.sqlite")
    points: dict[str, tuple[MemorySink, JsonObject]] = {}
    for number, point_id in enumerate(["point-a", "point-b", "point-c"]):
        for partition in range(2):
            kcat_write(
                kafka_service, topic, partition, [f"{point_id}-{n}:v{number}" for n in range(4)]
            )
        sink = MemorySink()
        metadata = source.backup(context, sink).metadata
        source.commit_checkpoint(metadata, point_id)
        points[point_id] = (sink, metadata)
    newest_sink, newest = points["point-c"]
    assert newest["continues"] == ["point-b"] and points["point-b"][1]["continues"] == ["point-a"]
    context.points = memory_points(points)

    renamed = unique_name("sr-replay-restored")
    names.append(renamed)
    target = {"topic_map": {topic: renamed}, "groups": False}
    report = source.restore(context, MemoryReader(newest_sink.streams), newest, target)
    assert report.ok
    assert kcat_read(kafka_service, renamed) == kcat_read(kafka_service, topic)
    assert [note for note in report.notes if note.startswith("replayed")] == [
        "replayed the earlier point point-a of the chain",
        "replayed the earlier point point-b of the chain",
    ]
    # Run again (as after an interruption): every point is already there, nothing is doubled.
    again = source.restore(context, MemoryReader(newest_sink.streams), newest, target)
    assert again.ok
    assert kcat_read(kafka_service, renamed) == kcat_read(kafka_service, topic)

    # Told to restore only the newest point: refused while the target lacks the earlier ones.
    alone = unique_name("sr-replay-alone")
    names.append(alone)
    with pytest.raises(ConflictError, match="point-b"):
        source.restore(
            context,
            MemoryReader(newest_sink.streams),
            newest,
            {"topic_map": {topic: alone}, "groups": False, "chain": False},
        )

    # A chain whose oldest point is gone from the vault is an error naming that point.
    del points["point-a"]
    broken = unique_name("sr-replay-broken")
    names.append(broken)
    with pytest.raises(NotFoundError, match=r"point point-a, which point point-b continues"):
        source.restore(
            context,
            MemoryReader(newest_sink.streams),
            newest,
            {"topic_map": {topic: broken}, "groups": False},
        )

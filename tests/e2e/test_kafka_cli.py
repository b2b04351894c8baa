"""Kafka incremental chains from the CLI (issue #15): back up twice with new records in
between and a gap in a third, restore the newest point after the topic and group are gone,
and see the whole chain come back in order, the group where it stopped, and the gap
published as an event with its point.

The broker is the shared one of dev/services; the test makes a topic and a group of its own
(unique names) and deletes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import TopicPartition

from strongroom.catalog import open_catalog
from strongroom.catalog.events import list_events
from tests.integration.sources.test_kafka import (
    commit,
    committed,
    create,
    delete_topics,
    kcat_read,
    kcat_write,
)
from tests.support.operations_flow import Cli
from tests.support.services import KafkaService, unique_name

pytestmark = pytest.mark.e2e


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


def test_the_newest_point_of_a_chain_restores_the_whole_chain(
    kafka_service: KafkaService, names: list[str], tmp_path: Path
) -> None:
    admin = kafka_service.connect()
    topic = create(admin, names, unique_name("sr-e2e-chain"), 2)
    group = unique_name("sr-e2e-group")
    cli = Cli(home=tmp_path / "home")
    config = tmp_path / "strongroom.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "vaults": {
                    "v": {
                        "url": (tmp_path / "vault").as_uri(),
                        "key": {"provider": "passphrase", "passphrase": "env:VAULT_PASS"},
                    }
                },
                "resources": {
                    "events": {
                        "type": "kafka",
                        "bootstrap_servers": [kafka_service.bootstrap],
                        "topics": [topic],
                    }
                },
            }
        )
    )
    cli.json("apply", "-f", str(config))

    def backup() -> str:
        job = cli.json("start-backup", "events", "--vault", "v", "--wait")
        assert job["state"] == "COMPLETED", job
        return str(job["result"]["point_id"])

    for partition in range(2):
        kcat_write(kafka_service, topic, partition, [f"a{n}:first-{n}" for n in range(10)])
    first = backup()
    for partition in range(2):
        kcat_write(kafka_service, topic, partition, [f"b{n}:second-{n}" for n in range(5)])
    commit(kafka_service, group, [TopicPartition(topic, 0, 12), TopicPartition(topic, 1, 3)])
    second = backup()
    at_second = kcat_read(kafka_service, topic)
    # Retention deletes records of partition 0 before the third backup reads them.
    kcat_write(kafka_service, topic, 0, [f"c{n}:third-{n}" for n in range(5)])
    admin.delete_records([TopicPartition(topic, 0, 18)])[TopicPartition(topic, 0, 18)].result(60)
    third = backup()

    with open_catalog(None, cli.home) as catalog, catalog.session(readonly=True) as session:
        gaps = [(e.subject, e.payload) for e in list_events(session, types=["*.gap_detected"])]
    assert len(gaps) == 1
    subject, payload = gaps[0]
    assert subject == third
    assert {key: payload[key] for key in ("topic", "partition", "from_offset", "to_offset")} == {
        "topic": topic,
        "partition": 0,
        "from_offset": 15,
        "to_offset": 18,
    }
    assert (payload["resource"], payload["vault"], payload["point_id"]) == ("events", "v", third)

    delete_topics(admin, topic)
    admin.delete_consumer_groups([group])[group].result(60)

    restored = cli.json("restore", second, "--wait")
    assert restored["state"] == "COMPLETED", restored
    notes = "\n".join(restored["result"]["notes"])
    assert f"replayed the earlier point {first}" in notes
    # Everything the topic held at the second backup, through the chain of two points.
    assert kcat_read(kafka_service, topic) == at_second
    assert committed(kafka_service, group, topic, 2) == [12, 3]

    again = cli.json("restore", second, "--wait")
    assert again["state"] == "COMPLETED", again
    assert len(kcat_read(kafka_service, topic)) == 30

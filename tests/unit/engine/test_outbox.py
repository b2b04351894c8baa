"""The delivery loop: routing by rule, at least once across a lost worker, retries,
dead letters and the cursor that starts where notifications were declared."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strongroom.catalog import Catalog
from strongroom.catalog import outbox as catalog_outbox
from strongroom.catalog.resources import upsert_resource
from strongroom.config.notifications import NotificationsConfig
from strongroom.engine.clock import ManualClock
from strongroom.engine.events import Event, EventBus
from strongroom.engine.outbox import DELIVERY_FAILED, Delivery, Outbox
from strongroom.errors import NetworkError
from tests.support.catalog import T0
from tests.unit.engine.support import of_type


def declare(catalog: Catalog, rules: list[dict[str, object]], **channels: object) -> None:
    config = NotificationsConfig.model_validate({"channels": channels, "rules": rules})
    with catalog.session() as session:
        catalog_outbox.write_notifications(session, config.model_dump(mode="json"), at=T0)


class Recorder:
    """A sender (strongroom's own interface) that records, and fails while told to."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int | None]] = []
        self.failures = 0

    def __call__(self, delivery: Delivery) -> None:
        if self.failures:
            self.failures -= 1
            raise NetworkError("the channel is down")
        self.sent.append((delivery.rule.name, delivery.target_key, delivery.event.id))


@pytest.fixture
def sender() -> Recorder:
    return Recorder()


@pytest.fixture
def outbox(catalog: Catalog, bus: EventBus, clock: ManualClock, sender: Recorder) -> Outbox:
    return Outbox(catalog, bus, clock, sender, worker="worker-1", claim_seconds=60)


def job_payload(
    resource: str, resource_type: str, state: str, vault: str = "main"
) -> dict[str, object]:
    return {
        "job": {
            "resource": resource,
            "resource_type": resource_type,
            "state": state,
            "vault": vault,
        }
    }


HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}


def test_events_before_the_rules_were_declared_are_not_routed(
    catalog: Catalog, bus: EventBus, outbox: Outbox, sender: Recorder
) -> None:
    bus.publish("backup.job.failed", "old", job_payload("orders-db", "postgres", "FAILED"))
    declare(catalog, [{"name": "all", "targets": [{"channel": "hook"}]}], hook=HOOK)
    new = bus.publish("backup.job.failed", "new", job_payload("orders-db", "postgres", "FAILED"))

    report = outbox.run_pass()

    assert (report.routed, report.delivered) == (1, 1)
    assert sender.sent == [("all", "channel:hook", new.id)]


def test_a_pattern_takes_types_resource_types_states_tags_and_vaults(
    catalog: Catalog, bus: EventBus, outbox: Outbox, sender: Recorder
) -> None:
    with catalog.session() as session:
        upsert_resource(session, name="shop-db", type="postgres", at=T0, tags={"team": "shop"})
    declare(
        catalog,
        [
            {
                "name": "shop-failures",
                "pattern": {
                    "types": ["backup.job.*"],
                    "resource_types": ["postgres"],
                    "states": ["FAILED"],
                    "tags": {"team": "shop"},
                    "vaults": ["main"],
                },
                "targets": [{"channel": "hook"}],
            }
        ],
        hook=HOOK,
    )
    wanted = bus.publish("backup.job.failed", "a", job_payload("shop-db", "postgres", "FAILED"))
    bus.publish("backup.job.completed", "b", job_payload("shop-db", "postgres", "COMPLETED"))
    bus.publish("backup.job.failed", "c", job_payload("orders-db", "postgres", "FAILED"))
    bus.publish("backup.job.failed", "d", job_payload("shop-db", "postgres", "FAILED", "dr"))
    bus.publish("restore.job.failed", "e", job_payload("shop-db", "postgres", "FAILED"))

    outbox.run_pass()

    assert sender.sent == [("shop-failures", "channel:hook", wanted.id)]


def test_a_channel_gets_only_events_at_or_above_its_minimum_severity(
    catalog: Catalog, bus: EventBus, outbox: Outbox, sender: Recorder
) -> None:
    declare(
        catalog,
        [{"name": "all", "targets": [{"channel": "pager"}, {"channel": "hook"}]}],
        hook=HOOK,
        pager={**HOOK, "min_severity": "critical"},
    )
    completed = bus.publish("backup.job.completed", "a", job_payload("cache", "redis", "COMPLETED"))
    escalation = bus.publish("backup.escalation", "b", job_payload("cache", "redis", "FAILED"))

    outbox.run_pass()

    assert sorted(sender.sent) == sorted(
        [
            ("all", "channel:hook", completed.id),
            ("all", "channel:hook", escalation.id),
            ("all", "channel:pager", escalation.id),
        ]
    )


def test_a_claim_that_lapses_is_delivered_again_by_another_worker(
    catalog: Catalog, bus: EventBus, clock: ManualClock, sender: Recorder
) -> None:
    declare(catalog, [{"name": "all", "targets": [{"channel": "hook"}]}], hook=HOOK)
    event = bus.publish("backup.job.failed", "a", job_payload("cache", "redis", "FAILED"))
    crashed = Outbox(catalog, bus, clock, sender, worker="crashed", claim_seconds=60)
    crashed.fan_out()
    with catalog.session() as session:
        (delivery_id,) = catalog_outbox.due_ids(session, now=clock.now(), limit=10)
        claimed = catalog_outbox.claim(
            session,
            delivery_id,
            worker="crashed",
            now=clock.now(),
            until=clock.now() + timedelta(seconds=60),
        )
        assert claimed is not None
    survivor = Outbox(catalog, bus, clock, sender, worker="survivor", claim_seconds=60)

    assert survivor.run_pass().delivered == 0  # still claimed
    clock.advance(61)
    assert survivor.run_pass().delivered == 1

    assert sender.sent == [("all", "channel:hook", event.id)]
    with catalog.session() as session:
        (row,) = catalog_outbox.list_deliveries(session)
        assert (row.state, row.attempts) == (catalog_outbox.DELIVERED, 1)


def test_a_failing_target_is_retried_with_backoff_then_dead_lettered_and_reported(
    catalog: Catalog,
    bus: EventBus,
    clock: ManualClock,
    outbox: Outbox,
    sender: Recorder,
    events: list[Event],
) -> None:
    retry = {"max_attempts": 3, "interval_seconds": 10, "backoff_rate": 2.0}
    declare(
        catalog,
        [
            {
                "name": "all",
                "pattern": {"types": ["backup.*"]},
                "targets": [{"channel": "hook"}],
                "retry": retry,
            }
        ],
        hook=HOOK,
    )
    event = bus.publish("backup.job.failed", "a", job_payload("cache", "redis", "FAILED"))
    sender.failures = 10

    assert outbox.run_pass().retried == 1
    clock.advance(9)
    assert outbox.run_pass().retried == 0  # the first retry waits 10 s
    clock.advance(1)
    assert outbox.run_pass().retried == 1
    clock.advance(20)  # the second waits 20 s
    report = outbox.run_pass()

    assert (report.retried, report.dead) == (0, 1)
    with catalog.session() as session:
        (row,) = catalog_outbox.list_deliveries(session)
        assert (row.state, row.attempts) == (catalog_outbox.DEAD, 3)
        assert row.last_error is not None and "the channel is down" in row.last_error
    (failed,) = of_type(events, DELIVERY_FAILED)
    assert failed.payload["event_id"] == event.id
    assert (failed.payload["rule"], failed.payload["attempts"]) == ("all", 3)
    assert sender.sent == []


def test_an_event_older_than_the_rules_max_age_is_dead_lettered_unsent(
    catalog: Catalog, bus: EventBus, clock: ManualClock, outbox: Outbox, sender: Recorder
) -> None:
    retry = {"max_attempts": 100, "interval_seconds": 60, "max_event_age_seconds": 600}
    declare(catalog, [{"name": "all", "targets": [{"channel": "hook"}], "retry": retry}], hook=HOOK)
    bus.publish("backup.job.failed", "a", job_payload("cache", "redis", "FAILED"))
    sender.failures = 1
    outbox.run_pass()
    clock.advance(601)

    assert outbox.run_pass().dead == 1
    assert sender.sent == []


def test_a_delivery_whose_rule_was_removed_is_dead_lettered(
    catalog: Catalog, bus: EventBus, outbox: Outbox, sender: Recorder
) -> None:
    declare(catalog, [{"name": "old", "targets": [{"channel": "hook"}]}], hook=HOOK)
    bus.publish("backup.job.failed", "a", job_payload("cache", "redis", "FAILED"))
    outbox.fan_out()
    declare(catalog, [{"name": "new", "targets": [{"channel": "hook"}]}], hook=HOOK)

    assert outbox.run_pass().dead == 1
    with catalog.session() as session:
        (row, *_) = catalog_outbox.list_deliveries(session, rule="old")
        assert row.last_error == "the rule 'old' is no longer declared"

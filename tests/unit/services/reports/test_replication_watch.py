"""Replication lag watched: the metric per copy pair, and the monitor's check that raises
``monitor.replication_lag_exceeded`` once while a point waits for its copy past the
threshold and resolves once the copy is in. Time is a manual clock on the same catalog."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strongroom.catalog import events as catalog_events
from strongroom.catalog import outbox as catalog_outbox
from strongroom.catalog.types import JobKind, JobState
from strongroom.daemon.metrics import open_registry
from strongroom.engine.clock import ManualClock
from strongroom.metrics.server import exposition
from strongroom.services.context import AppContext
from strongroom.services.reports.lag import ReplicationService
from strongroom.services.reports.monitor import REPLICATION, RESOLVED, MonitorService
from tests.support.data import make_tree
from tests.unit.services.operations_support import FAST_RETRY, Ops

PAIR = ("main", "docs", "dr")


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    world.add_vault("dr")
    world.files("docs", make_tree(tmp_path / "data"))
    with world.context.catalog.session() as session:
        catalog_outbox.write_section(
            session,
            catalog_outbox.MONITOR,
            {"replication_lag_hours": 2, "verification_max_age_days": 30},
            at=world.context.now(),
        )
    yield world
    world.close()


def _rule(ops: Ops) -> str:
    return ops.rule(
        "ops",
        "daily",
        selects=("docs",),
        retry_policy={"max_attempts": 1, **FAST_RETRY},
        copy_actions=[{"destination_vault": "dr"}],
    )


def _at(ops: Ops, when: datetime) -> AppContext:
    """The same home seen at ``when``."""
    return AppContext(home=ops.context.home, clock=ManualClock(when))


def _lag_samples(context: AppContext) -> dict[tuple[str, str], float]:
    text, _ = exposition(open_registry(context))
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name.startswith("strongroom_replication_"):
                labels = sample.labels
                assert (
                    labels["source_vault"],
                    labels["resource"],
                    labels["destination_vault"],
                ) == PAIR
                found[(sample.name, labels["resource"])] = sample.value
    return found


def test_the_lag_metric_is_how_long_the_oldest_uncopied_point_waited(ops: Ops) -> None:
    rule = _rule(ops)
    first = ops.backup("docs", rule=rule)
    [pair] = ReplicationService(ops.context).lag()
    assert pair.newest_source_at is not None
    assert pair.oldest_uncopied_at == pair.newest_source_at
    later = _at(ops, pair.newest_source_at + timedelta(minutes=30))
    try:
        assert _lag_samples(later) == {
            ("strongroom_replication_lag_seconds", "docs"): 1800.0,
            ("strongroom_replication_behind_points", "docs"): 1.0,
        }
    finally:
        later.close()

    for job in ops.service.jobs.list(kinds=[JobKind.COPY]):
        ops.service.run(job.id, poll_interval=0.05)
    second = ops.backup("docs", rule=rule)
    [pair] = ReplicationService(ops.context).lag()
    assert pair.newest_copied_point == first.result["point_id"]  # type: ignore[index]
    assert pair.newest_source_point == second.result["point_id"]  # type: ignore[index]
    assert pair.oldest_uncopied_at == pair.newest_source_at
    for job in ops.service.jobs.list(kinds=[JobKind.COPY], states=[JobState.PENDING]):
        ops.service.run(job.id, poll_interval=0.05)
    [pair] = ReplicationService(ops.context).lag()
    assert (pair.behind, pair.oldest_uncopied_at) == (0, None)
    assert pair.waiting_seconds(ops.context.now() + timedelta(days=3)) == 0
    assert pair.as_json()["oldest_uncopied_at"] is None


def test_the_monitor_raises_replication_lag_once_and_resolves_when_the_copy_is_in(
    ops: Ops,
) -> None:
    ops.backup("docs", rule=_rule(ops))
    [pair] = ReplicationService(ops.context).lag()
    assert pair.newest_source_at is not None
    created = pair.newest_source_at

    early = _at(ops, created + timedelta(hours=1))
    late = _at(ops, created + timedelta(hours=3))
    try:
        assert [alert.check for alert in MonitorService(early).check().alerts] == []
        first = MonitorService(late).check()
        [alert] = first.alerts
        assert (alert.check, alert.subject) == (REPLICATION, "main/docs/dr")
        assert (alert.resource, alert.vault) == ("docs", "dr")
        assert alert.value == pytest.approx(3 * 3600) and alert.threshold == 2 * 3600
        assert first.raised == [f"monitor/{REPLICATION}/main/docs/dr"]
        assert MonitorService(late).check().raised == []  # alerts once per incident

        [copy_job] = ops.service.jobs.list(kinds=[JobKind.COPY])
        ops.service.run(copy_job.id, poll_interval=0.05)
        cleared = MonitorService(late).check()
        assert cleared.alerts == []
        assert cleared.resolved == [f"monitor/{REPLICATION}/main/docs/dr"]
        with ops.context.catalog.session(readonly=True) as session:
            published = [
                (event.type, event.subject)
                for event in catalog_events.list_events(session, after_id=0, limit=10_000)
                if event.type.startswith("monitor.")
            ]
        assert published == [(REPLICATION, "main/docs/dr"), (RESOLVED, "main/docs/dr")]
    finally:
        early.close()
        late.close()

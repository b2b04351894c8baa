"""strongroom's Prometheus metrics, read from the catalog at every scrape.

The catalog is the source of truth, so the metrics are computed from it when Prometheus
scrapes (a custom collector) rather than counted in one process: every daemon and a
one-off ``strongroom metrics`` show the same numbers, and a restart loses nothing.
Names and labels are stable and documented in ``docs/metrics.md``; every label is
bounded by what the configuration declares (resources, rules, vaults), by the job kinds
and states, or by the error tree's codes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from strongroom.catalog import Catalog, maintenance, measures
from strongroom.catalog import outbox as catalog_outbox

DURATION_BUCKETS: Final = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)
"""Upper bounds (seconds) of the job duration histogram."""

DEFAULT_PRICES: Final = {"warm": 0.05, "cold": 0.01}
"""USD per GB-month by tier: AWS Backup's list prices for warm and cold storage."""

COMPLIANCE_WINDOW: Final = timedelta(days=30)
"""Schedule compliance counts the runs fired in this window."""

SCHEDULER_LEASE: Final = "scheduler"
_GB: Final = 1_000_000_000


@dataclass(frozen=True)
class PairReplication:
    """The replication state of one copy pair, as the metrics show it."""

    source_vault: str
    resource: str
    destination_vault: str
    waiting_seconds: float
    """How long the oldest source point without a copy has waited (0: none waits)."""
    behind: int
    """Source points newer than the newest one copied."""


ReplicationReader = Callable[[datetime], Sequence[PairReplication]]
"""Given the scrape's time, return every copy pair's replication state (the services
layer computes it: ``daemon/metrics.py`` wires ``ReplicationService`` in)."""


class CatalogCollector(Collector):
    """Collects every strongroom metric from a catalog (see ``docs/metrics.md``)."""

    def __init__(
        self,
        catalog: Catalog,
        now: Callable[[], datetime],
        *,
        prices: Mapping[str, float] | None = None,
        daemon_up: Callable[[], bool] | None = None,
        replication: ReplicationReader | None = None,
    ) -> None:
        self.catalog = catalog
        self.now = now
        self.prices = dict(prices or DEFAULT_PRICES)
        self.daemon_up = daemon_up
        self.replication = replication

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family, read in one catalog session."""
        now = self.now()
        with self.catalog.session(readonly=True) as session:
            jobs = measures.ended_jobs(session)
            points = measures.resource_points(session)
            stored = measures.stored_bytes(session)
            outcomes = measures.run_outcomes(session, since=now - COMPLIANCE_WINDOW)
            depth = measures.queue_depth(session)
            tick = measures.last_scheduler_tick(session, SCHEDULER_LEASE)
            deliveries = catalog_outbox.count_deliveries(session)
            runs = maintenance.read_times(session)
        yield from _job_metrics(jobs)
        yield from _point_metrics(points, now)
        yield from self._storage_metrics(stored)
        yield from _schedule_metrics(outcomes, depth, tick, deliveries)
        yield from _replication_metrics(self.replication(now) if self.replication else [])
        yield from _maintenance_metrics(runs)
        up = GaugeMetricFamily(
            "strongroom_daemon_up", "1 while a strongroom daemon serves these metrics, else 0."
        )
        up.add_metric([], 1.0 if self.daemon_up is not None and self.daemon_up() else 0.0)
        yield up

    def _storage_metrics(self, stored: Mapping[tuple[str, str], int]) -> Iterator[Metric]:
        size = GaugeMetricFamily(
            "strongroom_storage_bytes",
            "Bytes stored by the live recovery points of a vault, by tier.",
            labels=["vault", "tier"],
        )
        cost = GaugeMetricFamily(
            "strongroom_storage_monthly_cost_dollars",
            "Estimated monthly storage cost of a vault's tier (USD, configured prices per GB).",
            labels=["vault", "tier"],
        )
        for (vault, tier), total in sorted(stored.items()):
            size.add_metric([vault, tier], float(total))
            cost.add_metric([vault, tier], total / _GB * self.prices.get(tier, 0.0))
        yield size
        yield cost


def _job_metrics(jobs: list[measures.EndedJob]) -> Iterator[Metric]:
    ended = CounterMetricFamily(
        "strongroom_jobs",
        "Jobs that ended, by kind, resource, resource type, rule and final state.",
        labels=["kind", "resource", "resource_type", "rule", "state"],
    )
    failed = CounterMetricFamily(
        "strongroom_job_failures",
        "Jobs that ended FAILED, ABORTED or EXPIRED, by kind, resource, rule and error code.",
        labels=["kind", "resource", "resource_type", "rule", "error_code"],
    )
    ends: Counter[tuple[str, ...]] = Counter()
    failures: Counter[tuple[str, ...]] = Counter()
    durations: dict[tuple[str, ...], list[float]] = defaultdict(list)
    read: Counter[str] = Counter()
    written: Counter[str] = Counter()
    for job in jobs:
        ends[(job.kind, job.resource, job.resource_type, job.rule, job.state)] += 1
        if job.state in ("FAILED", "ABORTED", "EXPIRED"):
            failures[(job.kind, job.resource, job.resource_type, job.rule, job.error_code)] += 1
        if job.duration_seconds is not None:
            durations[(job.kind, job.resource, job.resource_type)].append(job.duration_seconds)
        if job.kind == "backup" and job.state in ("COMPLETED", "PARTIAL"):
            read[job.resource] += job.logical_size
            written[job.resource] += job.new_stored_size
    for labels, count in sorted(ends.items()):
        ended.add_metric(list(labels), float(count))
    for labels, count in sorted(failures.items()):
        failed.add_metric(list(labels), float(count))
    yield ended
    yield failed
    duration = HistogramMetricFamily(
        "strongroom_job_duration_seconds",
        "How long jobs ran, started to finished, by kind, resource and resource type.",
        labels=["kind", "resource", "resource_type"],
    )
    for labels, values in sorted(durations.items()):
        buckets = [
            (_bound(bound), float(sum(1 for value in values if value <= bound)))
            for bound in DURATION_BUCKETS
        ]
        buckets.append(("+Inf", float(len(values))))
        duration.add_metric(list(labels), buckets, sum(values))
    yield duration
    for name, help_text, totals in (
        ("strongroom_backup_read_bytes", "Bytes backups read from a resource.", read),
        ("strongroom_backup_written_bytes", "New bytes backups wrote to vaults.", written),
    ):
        family = CounterMetricFamily(name, help_text, labels=["resource"])
        for resource, total in sorted(totals.items()):
            family.add_metric([resource], float(total))
        yield family


def _bound(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{int(value)}.0"


def _point_metrics(points: list[measures.ResourcePoints], now: datetime) -> Iterator[Metric]:
    labels = ["resource", "resource_type"]
    age = GaugeMetricFamily(
        "strongroom_recovery_point_age_seconds",
        "Age of a resource's newest live recovery point (absent: none yet).",
        labels=labels,
    )
    size = GaugeMetricFamily(
        "strongroom_recovery_point_logical_bytes",
        "Logical size of a resource's newest recovery point.",
        labels=labels,
    )
    stored = GaugeMetricFamily(
        "strongroom_recovery_point_stored_bytes",
        "Stored size of a resource's newest recovery point.",
        labels=labels,
    )
    verify = GaugeMetricFamily(
        "strongroom_last_verify_success",
        "1 when a resource's latest verify found its point intact, 0 when damaged.",
        labels=labels,
    )
    verify_at = GaugeMetricFamily(
        "strongroom_last_verify_timestamp_seconds",
        "When a resource's points were last verified (Unix time).",
        labels=labels,
    )
    tested = GaugeMetricFamily(
        "strongroom_last_restore_test_success",
        "1 when a resource's latest restore test passed, 0 when it failed.",
        labels=labels,
    )
    tested_at = GaugeMetricFamily(
        "strongroom_last_restore_test_timestamp_seconds",
        "When a resource's points were last restore-tested (Unix time).",
        labels=labels,
    )
    for point in points:
        values = [point.resource, point.resource_type]
        if point.newest_at is not None:
            age.add_metric(values, (now - point.newest_at).total_seconds())
            size.add_metric(values, float(point.newest_logical_size))
            stored.add_metric(values, float(point.newest_stored_size))
        if point.verified_at is not None and point.verified_ok is not None:
            verify.add_metric(values, 1.0 if point.verified_ok else 0.0)
            verify_at.add_metric(values, point.verified_at.timestamp())
        if point.restore_tested_at is not None and point.restore_test_ok is not None:
            tested.add_metric(values, 1.0 if point.restore_test_ok else 0.0)
            tested_at.add_metric(values, point.restore_tested_at.timestamp())
    yield from (age, size, stored, verify, verify_at, tested, tested_at)


def _schedule_metrics(
    outcomes: Mapping[str, tuple[int, int]],
    depth: Mapping[str, int],
    tick: datetime | None,
    deliveries: Mapping[str, int],
) -> Iterator[Metric]:
    compliance = GaugeMetricFamily(
        "strongroom_schedule_compliance_ratio",
        "Share of a rule's runs in the last 30 days that completed every backup (1 when none ran).",
        labels=["rule"],
    )
    for rule, (good, total) in sorted(outcomes.items()):
        compliance.add_metric([rule], good / total if total else 1.0)
    yield compliance
    queue = GaugeMetricFamily(
        "strongroom_queue_depth",
        "Jobs waiting to run (CREATED or PENDING), by kind.",
        labels=["kind"],
    )
    for kind, count in sorted(depth.items()):
        queue.add_metric([kind], float(count))
    yield queue
    last_tick = GaugeMetricFamily(
        "strongroom_scheduler_last_tick_timestamp_seconds",
        "When the scheduling daemon last ticked (renewed its lease), Unix time.",
    )
    if tick is not None:
        last_tick.add_metric([], tick.timestamp())
    yield last_tick
    outbox = GaugeMetricFamily(
        "strongroom_event_deliveries",
        "Event deliveries in the outbox, by state (pending, delivered, dead).",
        labels=["state"],
    )
    for state in (catalog_outbox.PENDING, catalog_outbox.DELIVERED, catalog_outbox.DEAD):
        outbox.add_metric([state], float(deliveries.get(state, 0)))
    yield outbox


def _replication_metrics(pairs: Sequence[PairReplication]) -> Iterator[Metric]:
    labels = ["source_vault", "resource", "destination_vault"]
    lag = GaugeMetricFamily(
        "strongroom_replication_lag_seconds",
        "How long the oldest recovery point without a copy in the destination vault has "
        "waited for it (0 when every point up to the newest is copied), per copy pair.",
        labels=labels,
    )
    behind = GaugeMetricFamily(
        "strongroom_replication_behind_points",
        "Recovery points of the source newer than the newest one copied, per copy pair.",
        labels=labels,
    )
    for pair in sorted(pairs, key=lambda pair: (pair.source_vault, pair.resource)):
        values = [pair.source_vault, pair.resource, pair.destination_vault]
        lag.add_metric(values, pair.waiting_seconds)
        behind.add_metric(values, float(pair.behind))
    yield lag
    yield behind


def _maintenance_metrics(runs: maintenance.MaintenanceTimes) -> Iterator[Metric]:
    lifecycle = GaugeMetricFamily(
        "strongroom_lifecycle_last_run_timestamp_seconds",
        "When the lifecycle runner last ran over every vault (Unix time; absent: never).",
    )
    if runs.lifecycle_run_at is not None:
        lifecycle.add_metric([], runs.lifecycle_run_at.timestamp())
    yield lifecycle
    gc = GaugeMetricFamily(
        "strongroom_gc_last_run_timestamp_seconds",
        "When a vault's garbage collection last ran (Unix time; absent: never).",
        labels=["vault"],
    )
    for vault, at in sorted(runs.gc_at.items()):
        gc.add_metric([vault], at.timestamp())
    yield gc


def registry_for(
    catalog: Catalog,
    now: Callable[[], datetime],
    *,
    prices: Mapping[str, float] | None = None,
    daemon_up: Callable[[], bool] | None = None,
    replication: ReplicationReader | None = None,
) -> CollectorRegistry:
    """Return a registry holding only strongroom's collector (no process metrics);
    ``replication`` gives the copy pairs (no replication metrics without it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        CatalogCollector(catalog, now, prices=prices, daemon_up=daemon_up, replication=replication)
    )
    return registry

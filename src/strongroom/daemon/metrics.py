"""The metrics registry of a context: the catalog collector with the declared prices and
the copy pairs' replication lag."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client.registry import CollectorRegistry

from strongroom.catalog.outbox import METRICS, read_section
from strongroom.config.notifications import MetricsConfig
from strongroom.metrics.collector import PairReplication, registry_for
from strongroom.services.context import AppContext
from strongroom.services.reports.lag import ReplicationService


def replication_of(context: AppContext) -> Callable[[datetime], list[PairReplication]]:
    """Return the reader of every copy pair's replication state in ``context``."""
    service = ReplicationService(context)

    def read(now: datetime) -> list[PairReplication]:
        return [
            PairReplication(
                source_vault=pair.source_vault,
                resource=pair.resource,
                destination_vault=pair.destination_vault,
                waiting_seconds=pair.waiting_seconds(now),
                behind=pair.behind,
            )
            for pair in service.lag()
        ]

    return read


def open_registry(
    context: AppContext, *, daemon_up: Callable[[], bool] | None = None
) -> CollectorRegistry:
    """Return the registry of ``context``'s catalog, priced as ``apply`` declared."""
    with context.catalog.session(readonly=True) as session:
        stored = read_section(session, METRICS)
    config = MetricsConfig.model_validate(stored) if stored else MetricsConfig()
    return registry_for(
        context.catalog,
        context.now,
        prices={str(tier): price for tier, price in config.prices_per_gb_month.items()},
        daemon_up=daemon_up,
        replication=replication_of(context),
    )

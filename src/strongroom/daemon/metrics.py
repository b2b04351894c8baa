"""The metrics registry of a context: the catalog collector with the declared prices."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.registry import CollectorRegistry

from strongroom.catalog.outbox import METRICS, read_section
from strongroom.config.notifications import MetricsConfig
from strongroom.metrics.collector import registry_for
from strongroom.services.context import AppContext


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
    )

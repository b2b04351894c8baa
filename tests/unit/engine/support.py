"""Helpers shared by the engine tests: seed configuration, event filters, executors."""

from __future__ import annotations

from fnmatch import fnmatchcase

from strongroom.catalog import Catalog, resources
from strongroom.engine.events import Event
from tests.support.catalog import T0


def seed_config(catalog: Catalog) -> None:
    """Resources orders-db/billing-db (postgres) and cache (redis); vaults main and dr;
    plan daily with rules nightly (defaults), partial (allows partial results), fast
    (retries every 10 s, 2 attempts) and windowed (60 min start, 120 min completion)."""
    with catalog.session() as session:
        resources.upsert_resource(session, name="orders-db", type="postgres", at=T0)
        resources.upsert_resource(session, name="billing-db", type="postgres", at=T0)
        resources.upsert_resource(session, name="cache", type="redis", at=T0)
        main = resources.upsert_vault(session, name="main", url="file:///tmp/main", at=T0)
        resources.upsert_vault(session, name="dr", url="file:///tmp/dr", at=T0)
        plan = resources.upsert_plan(session, name="daily", at=T0)
        resources.upsert_rule(session, plan=plan, name="nightly", vault=main, at=T0)
        resources.upsert_rule(
            session, plan=plan, name="partial", vault=main, at=T0, allow_partial=True
        )
        resources.upsert_rule(
            session,
            plan=plan,
            name="fast",
            vault=main,
            at=T0,
            retry_policy={"max_attempts": 2, "interval_seconds": 10},
        )
        resources.upsert_rule(
            session,
            plan=plan,
            name="windowed",
            vault=main,
            at=T0,
            start_window_minutes=60,
            completion_window_minutes=120,
        )


def of_type(events: list[Event], pattern: str) -> list[Event]:
    """The events whose type matches ``pattern`` (fnmatch style)."""
    return [event for event in events if fnmatchcase(event.type, pattern)]

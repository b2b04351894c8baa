"""Engine test wiring: a SQLite catalog with seed rows, a manual clock, a recording bus."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog.types import JobKind
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import Handler
from strongroom.engine.events import Event, EventBus
from strongroom.engine.executor import ThreadPoolJobExecutor
from strongroom.engine.jobs import JobService
from strongroom.engine.states import JobStateMachine
from tests.support.catalog import T0
from tests.unit.engine.support import seed_config


class MakeExecutor(Protocol):
    def __call__(
        self,
        handlers: Mapping[JobKind, Handler],
        *,
        on: JobStateMachine | None = None,
        **options: Any,
    ) -> ThreadPoolJobExecutor: ...


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with open_catalog(None, tmp_path / "home") as catalog:
        seed_config(catalog)
        yield catalog


@pytest.fixture
def bus(catalog: Catalog, clock: ManualClock) -> EventBus:
    return EventBus(catalog, clock)


@pytest.fixture
def events(bus: EventBus) -> list[Event]:
    """Every event dispatched on the bus, in order."""
    seen: list[Event] = []
    bus.subscribe("*", seen.append)
    return seen


@pytest.fixture
def machine(catalog: Catalog, bus: EventBus, clock: ManualClock) -> JobStateMachine:
    return JobStateMachine(catalog, bus, clock)


@pytest.fixture
def make_executor(machine: JobStateMachine) -> Iterator[MakeExecutor]:
    """Build executors on ``machine`` (or another) that are shut down after the test."""
    made: list[ThreadPoolJobExecutor] = []

    def make(
        handlers: Mapping[JobKind, Handler],
        *,
        on: JobStateMachine | None = None,
        **options: Any,
    ) -> ThreadPoolJobExecutor:
        options.setdefault("lease_seconds", 60.0)
        options.setdefault("poll_interval", 0.05)
        executor = ThreadPoolJobExecutor(on or machine, handlers, **options)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.shutdown(wait=True, cancel=True)


@pytest.fixture
def service(machine: JobStateMachine) -> JobService:
    """A job service without an executor (tests that run jobs build their own)."""
    return JobService(machine)

"""The composition root builds a daemon that runs every job kind and the lifecycle.

A renamed handler or lifecycle module must fail here (and in mypy), never give a daemon
that starts and silently runs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.catalog.types import JobKind
from strongroom.daemon.compose import PLANNED_KINDS, job_handlers, open_daemon
from strongroom.engine.clock import ManualClock
from strongroom.engine.daemon import DaemonSettings
from strongroom.errors import ConfigError
from strongroom.services.context import AppContext
from strongroom.services.retention.lifecycle import LifecycleReport


@pytest.fixture
def context(tmp_path: Path) -> Iterator[AppContext]:
    made = AppContext(home=tmp_path / "home", clock=ManualClock(datetime(2030, 1, 1, tzinfo=UTC)))
    yield made
    made.close()


def test_every_job_kind_has_a_handler_unless_it_is_planned(context: AppContext) -> None:
    handled = set(job_handlers(context))
    assert handled.isdisjoint(PLANNED_KINDS)
    assert handled | PLANNED_KINDS == set(JobKind)
    assert {JobKind.BACKUP, JobKind.RESTORE, JobKind.VERIFY} <= handled


def test_the_daemon_runs_the_handlers_and_the_lifecycle_runner(context: AppContext) -> None:
    daemon = open_daemon(context, DaemonSettings())
    assert set(daemon.executor.handlers) == set(job_handlers(context))
    assert daemon.lifecycle is not None
    report = daemon.lifecycle()
    assert isinstance(report, LifecycleReport)
    assert report.actions == []
    assert not report.dry_run


def test_history_pruning_needs_at_least_one_day(context: AppContext) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        open_daemon(context, DaemonSettings(), history_days=0)

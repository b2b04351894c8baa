"""Job history retention: old job events and transitions go; job rows, unfinished jobs'
trails and the audit events of retention stay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from strongroom.catalog.history import JOB_DERIVED_EVENTS
from strongroom.catalog.models import EventRecord, Job, JobTransition
from strongroom.catalog.types import JobState
from strongroom.daemon.compose import open_daemon
from strongroom.engine.clock import ManualClock
from strongroom.engine.daemon import DaemonSettings
from strongroom.errors import ConfigError
from strongroom.services.jobs.history import HistoryService
from strongroom.services.retention import audit
from tests.support.cli import strongroom, text
from tests.support.data import make_tree
from tests.unit.services.operations_support import Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    made = Ops(tmp_path)
    yield made
    made.close()


def counts(ops: Ops) -> dict[str, int]:
    with ops.context.catalog.session(readonly=True) as session:
        return {
            "jobs": int(session.scalar(select(func.count()).select_from(Job)) or 0),
            "transitions": int(
                session.scalar(select(func.count()).select_from(JobTransition)) or 0
            ),
            "job events": int(
                session.scalar(
                    select(func.count())
                    .select_from(EventRecord)
                    .where(
                        EventRecord.type.like("%.job.%") | EventRecord.type.in_(JOB_DERIVED_EVENTS)
                    )
                )
                or 0
            ),
            "audit events": int(
                session.scalar(
                    select(func.count())
                    .select_from(EventRecord)
                    .where(
                        EventRecord.type.not_like("%.job.%"),
                        EventRecord.type.not_in(JOB_DERIVED_EVENTS),
                    )
                )
                or 0
            ),
        }


def history(ops: Ops, tmp_path: Path) -> tuple[str, str]:
    """Two ended backups, a queued one, and an audit event; return (ended, queued) ids."""
    ops.files("docs", make_tree(tmp_path / "docs"))
    ops.files("more", make_tree(tmp_path / "more", seed=3))
    ended = ops.backup("docs")
    assert ended.state is JobState.COMPLETED, ended.error
    assert ops.backup("more").state is JobState.COMPLETED
    queued = ops.service.start_backup("docs", "main")
    with ops.context.catalog.session() as session:
        audit.record(session, audit.LOCK_SET, "main", at=ops.context.now(), actor="operator")
    return ended.id, queued.id


def test_pruning_keeps_jobs_unfinished_trails_and_the_audit_trail(ops: Ops, tmp_path: Path) -> None:
    ended, queued = history(ops, tmp_path)
    before = counts(ops)
    assert before["transitions"] == 4 + 4 + 2 and before["audit events"] == 1

    # Nothing is older than a day yet: a prune removes nothing.
    assert HistoryService(ops.context).prune(older_than_days=1).events == 0
    assert counts(ops) == before

    ops.context.clock = ManualClock(datetime.now(UTC) + timedelta(days=10))
    dry = HistoryService(ops.context).prune(older_than_days=5, dry_run=True)
    assert (dry.events, dry.transitions) == (before["job events"], 8)
    assert counts(ops) == before

    done = HistoryService(ops.context).prune(older_than_days=5)
    assert (done.events, done.transitions) == (dry.events, dry.transitions)
    assert counts(ops) == {"jobs": 3, "transitions": 2, "job events": 0, "audit events": 1}
    assert ops.service.jobs.get(ended).state is JobState.COMPLETED  # the job row stays
    assert [t.to_state for t in ops.service.jobs.transitions(queued)] == [
        JobState.CREATED,
        JobState.PENDING,
    ]
    assert len(ops.service.list_recovery_points()) == 2


def test_a_prune_needs_at_least_one_day(ops: Ops) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        HistoryService(ops.context).prune(older_than_days=0)


def test_the_daemon_prunes_once_a_day_with_its_lifecycle(ops: Ops, tmp_path: Path) -> None:
    history(ops, tmp_path)
    clock = ManualClock(datetime.now(UTC) + timedelta(days=10))
    ops.context.clock = clock
    daemon = open_daemon(ops.context, DaemonSettings(tick_seconds=0.05), history_days=5)
    try:
        daemon.start(background=False)
        assert daemon.tick().leading
        assert counts(ops)["job events"] == 0
        assert counts(ops)["transitions"] == 2
    finally:
        daemon.stop()
        daemon.shutdown()


def test_the_cli_prunes_and_reports(ops: Ops, tmp_path: Path) -> None:
    history(ops, tmp_path)
    home = ops.context.home
    ops.close()
    dry = strongroom(home, "catalog", "prune-history", "--older-than-days", "1", "--dry-run")
    assert dry.returncode == 0, text(dry)
    assert "would prune 0 job events and 0 job transitions from before" in text(dry)
    refused = strongroom(home, "catalog", "prune-history", "--older-than-days", "0")
    assert refused.returncode == 2, text(refused)
    shown = strongroom(
        home, "catalog", "prune-history", "--older-than-days", "1", "--output", "json"
    )
    assert shown.returncode == 0, text(shown)
    report = json.loads(shown.stdout)
    assert (report["events"], report["transitions"], report["dry_run"]) == (0, 0, False)

"""The seed's production setup run unattended on a controllable clock, end to end.

Everything here is real except time: the configuration of ``examples/strongroom.yaml``
(the seed's production plan with its three rules, the production vault with a same-store
cold tier, the compliance-locked long-term vault) is applied with local vaults and a
files and a SQLite resource in place of the seed's servers; the daemon of ``strongroom
serve`` (``open_daemon``) fires the rules on a :class:`ManualClock`, its executor runs the
real backup handlers into the real vaults, and the lifecycle runner moves and deletes
recovery points. Each test walks one part of the seed's week: preview, firing, a start
window expiring, a completion window aborting a slow job, a missed firing after a
restart, lifecycle with the vault lock, and two daemons on one catalog.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog import points as catalog_points
from strongroom.catalog import runs as catalog_runs
from strongroom.catalog.types import JobKind, JobState, PointState, Tier
from strongroom.config.load import load_text
from strongroom.daemon.compose import job_handlers, open_daemon
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import Handler, JobContext, JobResult
from strongroom.engine.daemon import Daemon, DaemonSettings
from strongroom.engine.events import EventBus
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import job_view
from strongroom.errors import ConflictError, PolicyError
from strongroom.services.context import AppContext
from strongroom.services.declare.apply import ApplyService
from strongroom.services.retention.deletion import delete_recovery_point
from strongroom.services.retention.lifecycle import LifecycleService
from strongroom.services.schedule import ScheduleService
from strongroom.services.vaults.service import VaultService
from tests.support.waiting import PATIENCE

pytestmark = pytest.mark.e2e

SATURDAY_EVENING = datetime(2030, 1, 5, 20, 0, tzinfo=UTC)  # 2030-01-06 is a Sunday
SUNDAY = datetime(2030, 1, 6, tzinfo=UTC)
PRODUCTION = "ecommerce-production-vault"
LONG_TERM = "ecommerce-long-term-vault"
PLAN = "ecommerce-production-database-backup"
SETTINGS = DaemonSettings(
    tick_seconds=0.05,
    shutdown_timeout=5.0,
    abort_grace=2.0,
    poll_interval=0.05,
    job_lease_seconds=600.0,
    lifecycle_interval=timedelta(hours=1),
)


def config(root: Path) -> str:
    """``examples/strongroom.yaml`` with local vaults and local resources."""
    return f"""\
version: 1
retry: {{max_attempts: 3, interval_seconds: 300, backoff_rate: 2.0}}
vaults:
  {PRODUCTION}:
    url: {(root / "vaults" / "production").as_uri()}
    key: {{provider: key-file, path: {root / "keys" / "production.key"}}}
    cold_tier: {{kind: same-store}}
  {LONG_TERM}:
    url: {(root / "vaults" / "long-term").as_uri()}
    key: {{provider: key-file, path: {root / "keys" / "long-term.key"}}}
    lock:
      mode: compliance
      min_retention_days: 365
      max_retention_days: 2555
      changeable_for_days: 3
    cold_tier: {{kind: same-store, min_storage_days: 90}}
resources:
  ecommerce-orders-db:
    type: sqlite
    path: {root / "orders.db"}
    tags: {{BackupEnabled: "true", Environment: production}}
  ecommerce-uploads:
    type: files
    paths: [{root / "uploads"}]
    tags: {{BackupEnabled: "true"}}
  staging-uploads:
    type: files
    paths: [{root / "uploads"}]
    tags: {{Environment: staging}}
plans:
  {PLAN}:
    rules:
      - name: continuous-backup
        schedule: cron(0 */6 * * ? *)
        timezone: UTC
        start_window_minutes: 60
        completion_window_minutes: 180
        target_vault: {PRODUCTION}
        lifecycle: {{move_to_cold_after_days: 7, delete_after_days: 30}}
        recovery_point_tags: {{BackupType: automated}}
      - name: daily-backup
        schedule: cron(0 3 * * ? *)
        start_window_minutes: 60
        completion_window_minutes: 240
        target_vault: {PRODUCTION}
        lifecycle: {{move_to_cold_after_days: 30, delete_after_days: 90}}
        recovery_point_tags: {{BackupType: daily}}
      - name: weekly-backup
        schedule: cron(0 2 ? * SUN *)
        start_window_minutes: 120
        completion_window_minutes: 360
        target_vault: {LONG_TERM}
        lifecycle: {{move_to_cold_after_days: 90, delete_after_days: 365}}
        recovery_point_tags: {{BackupType: weekly, Compliance: required}}
    selections:
      - name: rds-backup-selection
        list_of_tags:
          - {{key: BackupEnabled, value: "true"}}
          - {{key: Environment, value: production}}
"""


@dataclass
class World:
    """A context on a manual clock with the seed's setup applied, and the daemons made."""

    root: Path
    clock: ManualClock
    context: AppContext
    daemons: list[Daemon]

    def daemon(self, handlers: dict[JobKind, Handler] | None = None) -> Daemon:
        """A daemon as ``strongroom serve`` builds it (or with the given handlers), started
        in the foreground: the test drives ticks and the executor."""
        if handlers is None:
            made = open_daemon(self.context, SETTINGS)
        else:
            made = Daemon(made_machine(self), handlers, SETTINGS)
        self.daemons.append(made)
        return made

    def at(self, when: datetime) -> None:
        self.clock.set(when)

    def jobs(self, rule: str | None = None) -> list[tuple[str, str, JobState, str]]:
        """(resource, vault, state, reason of the last transition) of the backup jobs (of
        ``rule`` only, when given)."""
        with self.context.catalog.session(readonly=True) as session:
            rows = [
                (job_view(job), catalog_jobs.list_transitions(session, job.id)[-1].reason)
                for job in catalog_jobs.list_jobs(session, kinds=[JobKind.BACKUP])
            ]
        return sorted(
            (job.resource or "", job.vault or "", job.state, why or "")
            for job, why in rows
            if rule is None or (job.rule or "").split("/")[-1] == rule
        )

    def points(self, vault: str) -> list[tuple[str, str, PointState, Tier, datetime]]:
        """(id, resource, state, tier, created) of a vault's recovery points, oldest first."""
        with self.context.catalog.session(readonly=True) as session:
            rows = catalog_points.list_recovery_points(session, vault=vault)
            return sorted(
                ((p.id, p.resource.name, p.state, p.tier, p.created_at) for p in rows),
                key=lambda row: (row[4], row[1]),
            )


def made_machine(world: World) -> JobStateMachine:
    bus = EventBus(world.context.catalog, world.clock)
    return JobStateMachine(world.context.catalog, bus, world.clock)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    (tmp_path / "uploads" / "invoices").mkdir(parents=True)
    for number in range(20):
        (tmp_path / "uploads" / "invoices" / f"{number:04}.pdf").write_bytes(
            f"invoice {number}\n".encode() * (500 + number)
        )
    with sqlite3.connect(tmp_path / "orders.db") as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, cents INTEGER)")
        db.executemany(
            "INSERT INTO orders (email, cents) VALUES (?, ?)",
            [(f"buyer{n}@example.com", n * 137 % 10_000) for n in range(2_000)],
        )
    db.close()
    clock = ManualClock(SATURDAY_EVENING)
    context = AppContext(home=tmp_path / "home", clock=clock)
    ApplyService(context).apply(load_text(config(tmp_path), "strongroom.yaml"))
    made = World(tmp_path, clock, context, [])
    yield made
    for daemon in made.daemons:
        daemon.stop()
        daemon.stop()
        daemon.shutdown()
    context.close()


def fire(world: World, daemon: Daemon, when: datetime) -> list[str]:
    """Move the clock to ``when``, tick, run what the tick queued; return the rules fired."""
    world.at(when)
    tick = daemon.tick()
    assert tick.leading and tick.report is not None
    daemon.executor.run_until_idle(timeout=PATIENCE)
    return sorted(rule.name for run in tick.report.started for rule in run.firing.rules)


SELECTED = ["ecommerce-orders-db", "ecommerce-uploads"]


def test_the_preview_of_the_seed_plan_lists_each_rules_next_firings(world: World) -> None:
    previews = {
        preview.rule: preview
        for preview in ScheduleService(world.context).preview(PLAN, count=3, start=SATURDAY_EVENING)
    }
    assert [t.astimezone(UTC) for t in previews["continuous-backup"].fire_times] == [
        SUNDAY,
        SUNDAY + timedelta(hours=6),
        SUNDAY + timedelta(hours=12),
    ]
    assert [t.astimezone(UTC) for t in previews["daily-backup"].fire_times] == [
        SUNDAY + timedelta(hours=3, days=day) for day in range(3)
    ]
    assert [t.astimezone(UTC) for t in previews["weekly-backup"].fire_times] == [
        SUNDAY + timedelta(hours=2, weeks=week) for week in range(3)
    ]


def test_the_daemon_fires_each_rule_into_its_vault_with_its_lifecycle(world: World) -> None:
    daemon = world.daemon()
    assert daemon.start(background=False)
    assert fire(world, daemon, SUNDAY + timedelta(seconds=20)) == ["continuous-backup"]
    assert fire(world, daemon, SUNDAY + timedelta(hours=1)) == []
    assert fire(world, daemon, SUNDAY + timedelta(hours=2, seconds=5)) == ["weekly-backup"]
    assert fire(world, daemon, SUNDAY + timedelta(hours=3, seconds=5)) == ["daily-backup"]
    fire(world, daemon, SUNDAY + timedelta(hours=3, minutes=1))  # finishes the ended runs

    # The selection is the seed's ListOfTags (ORed): the staging resource is never backed up.
    assert [row[:3] for row in world.jobs()] == sorted(
        [(name, PRODUCTION, JobState.COMPLETED) for name in SELECTED] * 2
        + [(name, LONG_TERM, JobState.COMPLETED) for name in SELECTED]
    )
    with world.context.catalog.session(readonly=True) as session:
        weekly = catalog_points.list_recovery_points(session, vault=LONG_TERM)
        assert {point.tags["BackupType"] for point in weekly} == {"weekly"}
        assert {point.delete_at for point in weekly} == {
            SUNDAY + timedelta(hours=2, days=365, seconds=5)
        }
        runs = catalog_runs.list_runs(session)
        assert {run.state for run in runs} == {JobState.COMPLETED}
        assert [
            sorted((entry["resource"], entry["state"]) for entry in run.summary["resources"])
            for run in runs
        ] == [[(name, "COMPLETED") for name in SELECTED]] * 3, [run.summary for run in runs]


def test_jobs_not_started_within_the_start_window_expire(world: World) -> None:
    daemon = world.daemon()
    assert daemon.start(background=False)
    world.at(SUNDAY + timedelta(seconds=5))
    started = daemon.tick().report
    assert started is not None and len(started.started) == 1
    # No worker picks the jobs up (say every worker is busy) for the whole start window.
    world.at(SUNDAY + timedelta(minutes=61))
    daemon.tick()
    daemon.executor.run_until_idle(timeout=PATIENCE)
    expired = world.jobs()
    assert [(name, state) for name, _, state, _ in expired] == [
        (name, JobState.EXPIRED) for name in SELECTED
    ]
    assert all("start window" in reason for *_, reason in expired), expired
    assert world.points(PRODUCTION) == []


class Slow:
    """Wraps the real backup handler: the uploads backup blocks until cancelled."""

    def __init__(self, real: Handler) -> None:
        self.real = real
        self.entered = threading.Event()

    def __call__(self, context: JobContext) -> JobResult:
        if context.job.resource == "ecommerce-uploads":
            self.entered.set()
            while True:
                context.cancel.raise_if_cancelled()
                context.cancel.wait(0.02)
        return self.real(context)


def test_a_job_running_when_its_completion_window_closes_is_aborted_without_a_point(
    world: World,
) -> None:
    handlers = job_handlers(world.context)
    slow = Slow(handlers[JobKind.BACKUP])
    daemon = world.daemon({**handlers, JobKind.BACKUP: slow})
    assert daemon.start(background=True)
    world.at(SUNDAY + timedelta(seconds=5))
    daemon.tick()
    assert slow.entered.wait(PATIENCE)
    deadline = time.monotonic() + PATIENCE
    while ("ecommerce-orders-db", PRODUCTION, JobState.COMPLETED) not in [
        row[:3] for row in world.jobs()
    ]:
        assert time.monotonic() < deadline, world.jobs()
        time.sleep(0.05)
    world.at(SUNDAY + timedelta(minutes=181))
    daemon.tick()
    daemon.shutdown()
    jobs = world.jobs("continuous-backup")
    assert jobs[0][:3] == ("ecommerce-orders-db", PRODUCTION, JobState.COMPLETED)
    assert jobs[1][:3] == ("ecommerce-uploads", PRODUCTION, JobState.ABORTED)
    assert "completion window" in jobs[1][3], jobs
    # The 00:00 run left one point; the daily rule fired at 03:01 too and may have added
    # one of the orders database before the shutdown, but never one of the slow uploads.
    points = world.points(PRODUCTION)
    assert [row[1] for row in points if row[4] < SUNDAY + timedelta(hours=3)] == [
        "ecommerce-orders-db"
    ]
    assert "ecommerce-uploads" not in [row[1] for row in points]


def test_a_firing_missed_while_the_daemon_was_down_runs_once_after_a_restart(
    world: World,
) -> None:
    first = world.daemon()
    assert first.start(background=False)
    fire(world, first, SUNDAY + timedelta(seconds=5))
    first.stop()
    first.shutdown()

    # Down from 00:00 to 13:30: the 06:00 and 12:00 firings of continuous-backup, the
    # 02:00 weekly and the 03:00 daily were missed. Only the 12:00 one is still inside
    # its start window (60 minutes): the default policy runs it once, never a burst.
    second = world.daemon()
    assert second.start(background=False)
    world.at(SUNDAY + timedelta(hours=12, minutes=30))
    tick = second.tick().report
    assert tick is not None
    second.executor.run_until_idle(timeout=PATIENCE)
    assert [(run.firing.fired_at, run.firing.lead.name) for run in tick.started] == [
        (SUNDAY + timedelta(hours=12), "continuous-backup")
    ]
    skipped = {skip.rule.split("/")[-1]: skip.count for skip in tick.skipped}
    assert skipped["continuous-backup"] == 1, tick.skipped  # the 06:00 firing
    states = [state for _, _, state, _ in world.jobs()]
    assert states == [JobState.COMPLETED] * 4  # two runs of two resources, nothing more


def test_lifecycle_moves_and_deletes_points_and_the_lock_refuses_an_early_delete(
    world: World,
) -> None:
    daemon = world.daemon()
    assert daemon.start(background=False)
    fire(world, daemon, SUNDAY + timedelta(seconds=5))
    fire(world, daemon, SUNDAY + timedelta(hours=2, seconds=5))
    [weekly, _] = world.points(LONG_TERM)
    with pytest.raises(PolicyError, match="lock"):
        delete_recovery_point(world.context, weekly[0], actor="operator", reason="cleanup")

    world.at(SUNDAY + timedelta(days=8))
    assert daemon.tick().lifecycle is not None  # the daemon's lifecycle hook ran
    production = world.points(PRODUCTION)
    assert [(state, tier) for _, _, state, tier, _ in production] == [
        (PointState.AVAILABLE, Tier.COLD)
    ] * 2

    world.at(SUNDAY + timedelta(days=31))
    report = LifecycleService(world.context).run(gc=True)
    assert report.ok, report.to_json()
    assert {state for _, _, state, _, _ in world.points(PRODUCTION)} == {PointState.DELETED}
    vaults = VaultService(world.context)
    assert vaults.points(PRODUCTION) == []  # the manifests are gone from the vault itself
    assert len(vaults.points(LONG_TERM)) == 2
    # The weekly points are a year from expiry and under the vault lock: untouched.
    assert [(state, tier) for _, _, state, tier, _ in world.points(LONG_TERM)] == [
        (PointState.AVAILABLE, Tier.WARM)
    ] * 2


def test_a_second_daemon_on_the_catalog_refuses_and_a_standby_never_fires(
    world: World,
) -> None:
    world.at(SUNDAY - timedelta(seconds=10))  # the daemons renew their lease every tick
    leader = world.daemon()
    assert leader.start(background=False)
    with pytest.raises(ConflictError, match="another daemon"):
        world.daemon().start(background=False)
    standby = Daemon(
        made_machine(world),
        job_handlers(world.context),
        DaemonSettings(**{**SETTINGS.__dict__, "standby": True}),
    )
    world.daemons.append(standby)
    assert not standby.start(background=False)
    world.at(SUNDAY + timedelta(seconds=5))
    assert not standby.tick().leading
    assert leader.tick().leading
    assert not standby.tick().leading
    leader.executor.run_until_idle(timeout=PATIENCE)
    with world.context.catalog.session(readonly=True) as session:
        assert len(catalog_runs.list_runs(session)) == 1
    assert len(world.jobs()) == 2

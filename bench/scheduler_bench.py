"""Scheduler benchmark: tick time and catalog growth with many resources and plans.

    .venv/bin/python bench/scheduler_bench.py [--resources 10000] [--plans 100] [--days 2]
        [--tick-minutes 5] [--workers 8] [--catalog URL] [--work DIR]

Generates a catalog (a temporary SQLite file, or the empty database ``--catalog`` names,
e.g. a PostgreSQL one) with ``--resources`` resources spread evenly over ``--plans``
plans. Every plan has the seed's three rules (every 6 hours, daily at 03:00, weekly on
Sunday at 02:00; all plans fire at the same instants, the worst case) and selects its
resources by tag. Then it simulates ``--days`` days on a manual clock: every
``--tick-minutes`` the scheduler ticks (timed), and an executor runs the jobs the tick
made runnable with an instant fake backup handler that records a recovery point, as the
real one does (the executor's time is reported apart, as job throughput).

Prints the time per scheduling tick (mean, p95, max; all ticks, ticks that fired rules,
idle ticks) and, per simulated day, the rows in each table and the database size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))

from measure import table
from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog import points as catalog_points
from strongroom.catalog import resources as catalog_resources
from strongroom.catalog.models import Base
from strongroom.catalog.types import JobKind
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import Handler, JobContext, JobResult
from strongroom.engine.events import EventBus
from strongroom.engine.executor import ThreadPoolJobExecutor
from strongroom.engine.scheduler import Scheduler
from strongroom.engine.states import JobStateMachine

START = datetime(2030, 1, 1, tzinfo=UTC)  # a Tuesday, midnight
RULES: list[dict[str, Any]] = [
    {
        "name": "continuous-backup",
        "schedule": "cron(0 */6 * * ? *)",
        "start_window_minutes": 60,
        "completion_window_minutes": 180,
        "lifecycle": {"delete_after_days": 30, "move_to_cold_after_days": 7},
    },
    {
        "name": "daily-backup",
        "schedule": "cron(0 3 * * ? *)",
        "start_window_minutes": 60,
        "completion_window_minutes": 240,
        "lifecycle": {"delete_after_days": 90, "move_to_cold_after_days": 30},
    },
    {
        "name": "weekly-backup",
        "schedule": "cron(0 2 ? * SUN *)",
        "start_window_minutes": 120,
        "completion_window_minutes": 360,
        "lifecycle": {"delete_after_days": 365, "move_to_cold_after_days": 90},
    },
]


@dataclass
class Ticks:
    """Wall and CPU seconds per tick, split by whether the tick started runs."""

    firing: list[tuple[float, float]] = field(default_factory=list)
    idle: list[tuple[float, float]] = field(default_factory=list)
    jobs: int = 0
    executor_seconds: float = 0.0

    @property
    def all(self) -> list[tuple[float, float]]:
        return self.firing + self.idle


def generate(catalog: Catalog, resources: int, plans: int) -> None:
    """Vaults, ``resources`` resources tagged with their plan, ``plans`` plans of 3 rules."""
    with catalog.session() as session:
        vault = catalog_resources.upsert_vault(
            session, name="production", url="memory://bench", at=START
        )
        for index in range(resources):
            catalog_resources.upsert_resource(
                session,
                name=f"db-{index:05d}",
                type="postgres",
                at=START,
                tags={"plan": f"plan-{index % plans:03d}", "Environment": "production"},
            )
        for number in range(plans):
            plan = catalog_resources.upsert_plan(session, name=f"plan-{number:03d}", at=START)
            plan.selections = [  # type: ignore[assignment]
                {"name": "tagged", "list_of_tags": [{"key": "plan", "value": plan.name}]}
            ]
            for rule in RULES:
                settings = dict(rule)
                name = str(settings.pop("name"))
                catalog_resources.upsert_rule(
                    session, plan=plan, name=name, vault=vault, at=START, **settings
                )


def instant_backup() -> Handler:
    """A handler that 'backs up' at once and returns the recovery point to record, as the
    real one does (the executor records it in the transaction that completes the job)."""

    def backup(context: JobContext) -> JobResult:
        job = context.job
        now = context.clock.now()
        point_id = uuid.uuid4().hex * 2
        lifecycle = job.params.get("lifecycle", {})

        def record(session: Session) -> None:
            catalog_points.record_recovery_point(
                session,
                point_id=point_id,
                vault_id=job.vault_id or 0,
                resource_id=job.resource_id or 0,
                job_id=job.id,
                created_at=now,
                completed_at=now,
                logical_size=1 << 20,
                stored_size=1 << 18,
                tags=job.params.get("recovery_point_tags", {}),
                delete_at=now + timedelta(days=lifecycle.get("delete_after_days", 30)),
            )

        return JobResult({"point_id": point_id}, record=record)

    return backup


def row_counts(catalog: Catalog) -> dict[str, int]:
    with catalog.session(readonly=True) as session:
        return {
            table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


def database_bytes(catalog: Catalog, sqlite_file: Path | None) -> int:
    if sqlite_file is not None:
        raw = catalog.engine.raw_connection()  # autocommit: a checkpoint runs outside BEGIN
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        return sum(
            path.stat().st_size
            for path in sqlite_file.parent.glob(sqlite_file.name + "*")
            if path.is_file()
        )
    with catalog.session(readonly=True) as session:
        return int(session.scalar(text("SELECT pg_database_size(current_database())")) or 0)


def stats(samples: list[tuple[float, float]]) -> list[str]:
    """Count, then mean / p95 / max in ms of wall time, then of CPU time."""
    if not samples:
        return ["0"] + ["-"] * 6
    cells = [str(len(samples))]
    for values in ([wall for wall, _ in samples], [cpu for _, cpu in samples]):
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        cells += [
            f"{statistics.fmean(values) * 1000:.1f}",
            f"{p95 * 1000:.1f}",
            f"{max(values) * 1000:.1f}",
        ]
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--tick-minutes", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--catalog", help="an empty database URL (default: temporary SQLite)")
    parser.add_argument("--work", type=Path, help="folder for the SQLite catalog")
    options = parser.parse_args()

    work = options.work or Path(tempfile.mkdtemp(prefix="scheduler-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sqlite_file = None if options.catalog else work / "catalog.db"
    url = options.catalog or f"sqlite:///{sqlite_file}"
    catalog = open_catalog(url, work)
    started = time.perf_counter()
    generate(catalog, options.resources, options.plans)
    print(
        f"generated {options.resources} resources, {options.plans} plans, "
        f"{3 * options.plans} rules in {time.perf_counter() - started:.1f}s ({catalog.dialect})"
    )

    clock = ManualClock(START)
    machine = JobStateMachine(catalog, EventBus(catalog, clock), clock)
    executor = ThreadPoolJobExecutor(
        machine,
        {JobKind.BACKUP: instant_backup()},
        max_workers=options.workers,
        lease_seconds=3600,
        poll_interval=0.05,
    )
    scheduler = Scheduler(machine, executor=executor)
    scheduler.tick()  # the scheduler sees the rules (their state rows) before time runs
    step = timedelta(minutes=options.tick_minutes)
    ticks = Ticks()
    growth: list[list[str]] = []
    previous = row_counts(catalog)
    previous_size = database_bytes(catalog, sqlite_file)
    initial = dict(previous)
    try:
        for day in range(1, options.days + 1):
            end = START + timedelta(days=day)
            while clock.now() < end:
                clock.advance(step)
                began, began_cpu = time.perf_counter(), time.process_time()
                report = scheduler.tick()
                elapsed = time.perf_counter() - began
                cpu = time.process_time() - began_cpu
                jobs = sum(len(run.job_ids) for run in report.started)
                (ticks.firing if report.started else ticks.idle).append((elapsed, cpu))
                if jobs:
                    ticks.jobs += jobs
                    began = time.perf_counter()
                    executor.run_until_idle()
                    ticks.executor_seconds += time.perf_counter() - began
                    print(
                        f"  {clock.now():%a %H:%M}: {len(report.started)} runs, {jobs} jobs "
                        f"scheduled in {elapsed:.2f}s ({cpu:.2f}s CPU), "
                        f"run in {time.perf_counter() - began:.1f}s",
                        flush=True,
                    )
            counts = row_counts(catalog)
            size = database_bytes(catalog, sqlite_file)
            growth.append(
                [f"day {day}"]
                + [f"+{counts[name] - previous[name]}" for name in _SHOWN]
                + [f"+{(size - previous_size) / 2**20:.1f}", f"{size / 2**20:.1f}"]
            )
            previous, previous_size = counts, size
    finally:
        executor.shutdown(wait=True, cancel=True)

    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)\n")
    print(
        table(
            f"Scheduler tick time ({options.resources} resources, {options.plans} plans, "
            f"{catalog.dialect}, tick every {options.tick_minutes:g} simulated min)",
            ["ticks", "count", "mean ms", "p95 ms", "max ms", "CPU mean", "CPU p95", "CPU max"],
            [
                ["all", *stats(ticks.all)],
                ["firing", *stats(ticks.firing)],
                ["idle", *stats(ticks.idle)],
            ],
        )
    )
    throughput = ticks.jobs / ticks.executor_seconds if ticks.executor_seconds else 0.0
    print(
        f"executor: {ticks.jobs} jobs in {ticks.executor_seconds:.1f}s "
        f"({throughput:.0f} jobs/s, {options.workers} workers, instant handler)\n"
    )
    print(
        table(
            "Catalog growth per simulated day (rows added per table; database MiB)",
            ["day", *_SHOWN, "MiB added", "MiB total"],
            [["start", *[str(initial[name]) for name in _SHOWN], "", ""], *growth],
        )
    )
    catalog.close()


_SHOWN = [
    "runs",
    "jobs",
    "job_transitions",
    "events",
    "recovery_points",
    "rule_schedules",
    "failure_records",
]


if __name__ == "__main__":
    main()

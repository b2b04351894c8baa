"""The scheduler on a manual clock: the seed plan's rules firing for a week, one run per
firing over the selected resources, windows counted from the scheduled time, merged
rules, no pile-up, and the run summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strongroom.catalog import Catalog, points
from strongroom.catalog.jobs import ConcurrencyLimits
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import JobContext, JobResult
from strongroom.engine.events import Event
from strongroom.engine.executor import ThreadPoolJobExecutor
from strongroom.engine.scheduler import Scheduler, TickReport
from strongroom.engine.states import JobStateMachine
from strongroom.errors import ConfigError
from tests.support.catalog import T0
from tests.support.scheduling import (
    CONTINUOUS,
    DAILY,
    PLAN,
    SELECTED,
    WEEKLY,
    fire_state,
    resources_of,
    run_jobs,
    runs,
    seed_plan,
    seed_resources,
)
from tests.support.waiting import PATIENCE
from tests.unit.engine.conftest import MakeExecutor
from tests.unit.engine.support import of_type
from tests.unit.engine.test_executor import Gate

BACKUP = JobKind.BACKUP


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in January 2030, UTC (T0 is Tuesday 1 January, 12:00)."""
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC)


def done(context: JobContext) -> JobResult:
    return JobResult({"logical_size": 100, "stored_size": 40})


@pytest.fixture
def planned(catalog: Catalog) -> Catalog:
    seed_resources(catalog)
    seed_plan(catalog)
    return catalog


def drive(
    scheduler: Scheduler,
    clock: ManualClock,
    until: datetime,
    step: timedelta,
    executor: ThreadPoolJobExecutor | None = None,
) -> list[TickReport]:
    """Tick every ``step`` until ``until``, running the jobs each tick made runnable."""
    reports = []
    while clock.now() < until:
        clock.advance(step)
        reports.append(scheduler.tick())
        if executor is not None:
            executor.run_until_idle(timeout=PATIENCE)
    return reports


def test_the_seed_plans_three_rules_fire_on_their_schedules_for_a_week(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, make_executor: MakeExecutor
) -> None:
    executor = make_executor({BACKUP: done})
    scheduler = Scheduler(machine, executor=executor)

    drive(scheduler, clock, T0 + timedelta(days=7), timedelta(hours=1), executor)
    scheduler.tick()  # finishes the last runs

    continuous = [run.fired_at for run in runs(planned, rule="continuous-backup")]
    daily = [run.fired_at for run in runs(planned, rule="daily-backup")]
    weekly = [run.fired_at for run in runs(planned, rule="weekly-backup")]
    assert continuous == [at(1, 18)] + [
        at(day, hour) for day in range(2, 8) for hour in (0, 6, 12, 18)
    ] + [at(8, 0), at(8, 6), at(8, 12)]
    assert daily == [at(day, 3) for day in range(2, 9)]
    assert weekly == [at(6, 2)]  # the first Sunday of 2030
    for run in runs(planned):
        assert run.state is JobState.COMPLETED, run.summary
        assert resources_of(planned, run.id) == SELECTED
    weekly_jobs = run_jobs(planned, runs(planned, rule="weekly-backup")[0].id)
    assert {job.vault for job in weekly_jobs} == {"long-term"}
    state = fire_state(planned, PLAN, "continuous-backup")
    assert state is not None
    assert (state.last_fired_at, state.next_fire_at, state.missed_firings) == (
        at(8, 12),
        at(8, 18),
        0,
    )


def test_a_firing_makes_one_run_and_one_job_per_selected_resource_with_the_rules_settings(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, events: list[Event]
) -> None:
    scheduler = Scheduler(machine)
    scheduler.tick()
    assert runs(planned) == []

    clock.set(at(2, 3, 0) + timedelta(seconds=20))
    report = scheduler.tick()

    assert [run.firing.lead.name for run in report.started] == ["daily-backup"]
    (run,) = runs(planned)
    assert (run.state, run.fired_at, run.summary["selected"]) == (JobState.RUNNING, at(2, 3), 2)
    jobs = run_jobs(planned, run.id)
    assert sorted(job.resource or "" for job in jobs) == SELECTED
    for job in jobs:
        assert job.state is JobState.PENDING
        assert job.rule == f"{PLAN}/daily-backup"
        # Windows count from the scheduled time, not from when the tick noticed it.
        assert (job.start_by, job.complete_by) == (at(2, 4), at(2, 7))
        assert job.params == {
            "fired_at": at(2, 3).isoformat(),
            "rules": [f"{PLAN}/daily-backup"],
            "lifecycle": DAILY["lifecycle"],
            "recovery_point_tags": DAILY["recovery_point_tags"],
            "copy_actions": [],
        }
    started = of_type(events, "backup.run.started")
    assert [(e.subject, e.payload["jobs"]) for e in started] == [(run.id, 2)]


def test_a_job_not_started_within_its_start_window_expires_while_the_limit_is_full(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, make_executor: MakeExecutor
) -> None:
    gate = Gate()

    def slow(context: JobContext) -> JobResult:
        gate.hold(context)
        return JobResult()

    executor = make_executor(
        {BACKUP: slow},
        limits=ConcurrencyLimits(max_running=1),
        heartbeat_interval=3600.0,
        lease_seconds=86_400,
    )
    scheduler = Scheduler(machine, executor=executor)
    clock.set(at(2, 3))
    scheduler.tick()
    executor.run_once()
    gate.wait_entered()
    (run,) = runs(planned)
    waiting = [job.id for job in run_jobs(planned, run.id) if job.state is JobState.PENDING]
    assert len(waiting) == 1

    clock.set(at(2, 3, 59))
    executor.run_once()  # the limit is still full: the job keeps waiting inside its window
    assert machine.get(waiting[0]).state is JobState.PENDING
    clock.set(at(2, 4))
    executor.run_once()
    assert machine.get(waiting[0]).state is JobState.EXPIRED

    gate.release.set()
    executor.run_until_idle(timeout=PATIENCE)
    scheduler.tick()
    (finished,) = runs(planned)
    assert finished.state is JobState.FAILED  # the rule does not allow partial runs
    assert finished.summary["counts"]["completed"] == 1
    assert finished.summary["counts"]["expired"] == 1


def test_two_rules_of_a_plan_firing_at_once_run_once_with_the_longer_lifecycle(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock
) -> None:
    hourly = {
        "name": "hourly",
        "schedule": "cron(0 * * * ? *)",
        "lifecycle": {"delete_after_days": 2},
        "recovery_point_tags": {"BackupType": "hourly", "Tier": "fast"},
        "start_window_minutes": 60,
        "completion_window_minutes": 120,
    }
    midnight = {
        "name": "midnight",
        "schedule": "cron(0 0 * * ? *)",
        "lifecycle": {"delete_after_days": 35, "move_to_cold_after_days": 7},
        "recovery_point_tags": {"BackupType": "nightly"},
        "start_window_minutes": 90,
        "completion_window_minutes": 600,
    }
    seed_plan(planned, [hourly, midnight], plan="merged")
    scheduler = Scheduler(machine)
    scheduler.tick()

    clock.set(at(1, 23, 30))
    scheduler.tick()  # hourly fired at 23:00; stepping to midnight from here
    clock.set(at(2, 0))
    scheduler.tick()

    run = runs(planned, plan="merged")[-1]
    assert (run.rule, run.summary["rules"]) == ("midnight", ["midnight", "hourly"])
    jobs = run_jobs(planned, run.id)
    assert len(jobs) == len(SELECTED)  # one job per resource, not one per rule
    for job in jobs:
        assert job.rule == "merged/midnight"
        assert job.params["lifecycle"] == {"delete_after_days": 35, "move_to_cold_after_days": 7}
        assert job.params["recovery_point_tags"] == {"BackupType": "nightly", "Tier": "fast"}
        assert job.params["rules"] == ["merged/midnight", "merged/hourly"]
        assert (job.start_by, job.complete_by) == (at(2, 1, 30), at(2, 10))
    for rule in ("hourly", "midnight"):
        state = fire_state(planned, "merged", rule)
        assert state is not None and (state.last_fired_at, state.last_run_id) == (at(2, 0), run.id)


def test_rules_writing_to_different_vaults_are_not_merged(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock
) -> None:
    local = {"name": "local", "schedule": "cron(0 0 * * ? *)", "start_window_minutes": 60}
    offsite = {**local, "name": "offsite", "vault": "long-term"}
    seed_plan(planned, [local, offsite], plan="two-vaults")
    scheduler = Scheduler(machine)
    scheduler.tick()

    clock.set(at(2, 0))
    scheduler.tick()

    assert sorted((run.rule, run.summary["vault"]) for run in runs(planned, plan="two-vaults")) == [
        ("local", "production"),
        ("offsite", "long-term"),
    ]


def test_no_pile_up_a_resource_with_a_queued_or_running_backup_of_the_rule_is_skipped(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, make_executor: MakeExecutor
) -> None:
    seed_plan(
        planned,
        [{"name": "hourly", "schedule": "cron(0 * * * ? *)", "start_window_minutes": 120}],
        plan="busy",
    )
    gate = Gate()

    def slow(context: JobContext) -> JobResult:
        if context.job.resource == "orders-db":
            gate.hold(context)
        return JobResult()

    executor = make_executor({BACKUP: slow}, heartbeat_interval=3600.0, lease_seconds=86_400)
    scheduler = Scheduler(machine, executor=executor)
    scheduler.tick()
    clock.set(at(1, 13))
    scheduler.tick()
    executor.run_once()
    gate.wait_entered()
    first = runs(planned, rule="hourly")[0]
    running = {job.resource: job.id for job in run_jobs(planned, first.id)}

    clock.set(at(1, 14))
    scheduler.tick()

    second = runs(planned, rule="hourly")[1]
    assert resources_of(planned, second.id) == ["cache"]  # orders-db is still running
    assert second.summary["skipped"] == [
        {
            "resource": "orders-db",
            "job_id": running["orders-db"],
            "reason": "a backup of this rule for the resource is still queued or running",
        }
    ]
    gate.release.set()
    executor.run_until_idle(timeout=PATIENCE)
    scheduler.tick()
    ended = {run.id: run for run in runs(planned, rule="hourly")}
    assert ended[second.id].state is JobState.COMPLETED
    assert ended[second.id].summary["counts"]["skipped"] == 1


def test_queued_backups_are_not_queued_again_by_the_next_firing(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock
) -> None:
    seed_plan(
        planned,
        [{"name": "hourly", "schedule": "cron(0 * * * ? *)", "start_window_minutes": 180}],
        plan="idle",
    )
    scheduler = Scheduler(machine)  # nothing runs the jobs
    scheduler.tick()
    for hour in (13, 14, 15):
        clock.set(at(1, hour))
        scheduler.tick()

    fired = runs(planned, rule="hourly")
    assert [len(run_jobs(planned, run.id)) for run in fired] == [2, 0, 0]
    assert [len(run.summary["skipped"]) for run in fired] == [0, 2, 2]


def test_a_finished_run_has_a_summary_and_publishes_backup_run_completed(
    planned: Catalog,
    machine: JobStateMachine,
    clock: ManualClock,
    events: list[Event],
    make_executor: MakeExecutor,
) -> None:
    seed_plan(
        planned,
        [
            {
                "name": "nightly",
                "schedule": "cron(0 0 * * ? *)",
                "start_window_minutes": 60,
                "allow_partial": True,
                "retry_policy": {"max_attempts": 1},
            }
        ],
        plan="summary",
    )

    def handler(context: JobContext) -> JobResult:
        if context.job.resource == "cache":
            raise ConfigError("the redis password reference does not resolve")
        point_id = context.job.id.replace("-", "").ljust(64, "0")
        with planned.session() as session:
            points.record_recovery_point(
                session,
                point_id=point_id,
                vault_id=context.job.vault_id or 0,
                resource_id=context.job.resource_id or 0,
                job_id=context.job.id,
                created_at=context.clock.now(),
                logical_size=5000,
                stored_size=1200,
            )
        return JobResult({"point_id": point_id})

    executor = make_executor({BACKUP: handler})
    scheduler = Scheduler(machine, executor=executor)
    scheduler.tick()
    clock.set(at(2, 0))
    scheduler.tick()
    clock.advance(90)
    executor.run_until_idle(timeout=PATIENCE)
    clock.advance(30)
    report = scheduler.tick()

    (run,) = [run for run in report.finished if run.plan == "summary"]
    assert run.state is JobState.PARTIAL  # one resource failed, the rule allows partial runs
    summary = run.summary
    assert summary["counts"] == {
        "selected": 2,
        "jobs": 2,
        "completed": 1,
        "partial": 0,
        "failed": 1,
        "aborted": 0,
        "expired": 0,
        "skipped": 0,
    }
    assert (summary["logical_size"], summary["stored_size"]) == (5000, 1200)
    assert summary["duration_seconds"] == 120.0
    by_resource = {entry["resource"]: entry for entry in summary["resources"]}
    assert by_resource["orders-db"]["recovery_point"] == by_resource["orders-db"]["job_id"].replace(
        "-", ""
    ).ljust(64, "0")
    assert by_resource["orders-db"]["duration_seconds"] == 0.0
    assert by_resource["cache"]["error"]["code"] == "InvalidParameterException"
    (event,) = [e for e in of_type(events, "backup.run.completed") if e.subject == run.id]
    assert event.payload["state"] == "PARTIAL"
    assert "resources" not in event.payload
    assert [problem["resource"] for problem in event.payload["problems"]] == ["cache"]
    assert run.id not in {r.id for r in scheduler.tick().finished}  # finished once only


def test_a_plan_whose_stored_selections_are_invalid_records_a_failed_run_once(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock, events: list[Event]
) -> None:
    seed_plan(
        planned,
        [{"name": "nightly", "schedule": "cron(0 0 * * ? *)", "start_window_minutes": 60}],
        plan="broken",
        selections=[{"name": "nothing"}],  # selects nothing: refused by the model
    )
    scheduler = Scheduler(machine)
    scheduler.tick()
    clock.set(at(2, 0))
    scheduler.tick()
    clock.advance(60)
    scheduler.tick()

    (run,) = runs(planned, rule="nightly")
    assert run.state is JobState.FAILED
    assert "selections of plan 'broken'" in run.summary["error"]["message"]
    completed = of_type(events, "backup.run.completed")
    assert [e.payload["state"] for e in completed if e.subject == run.id] == ["FAILED"]


def test_a_changed_schedule_starts_over_from_now_without_catching_up(
    planned: Catalog, machine: JobStateMachine, clock: ManualClock
) -> None:
    scheduler = Scheduler(machine)
    scheduler.tick()
    clock.set(at(1, 20))
    seed_plan(planned, [{**CONTINUOUS, "schedule": "cron(30 * * * ? *)"}, DAILY, WEEKLY])
    scheduler.tick()  # 18:00 was due, but the schedule changed: it starts over from now
    state = fire_state(planned, PLAN, "continuous-backup")
    assert state is not None
    assert (state.schedule, state.next_fire_at) == ("cron(30 * * * ? *)", at(1, 20, 30))
    assert runs(planned, rule="continuous-backup") == []

"""Missed firings after the scheduler was down: run once inside the start window, or skip;
never a burst, however long the downtime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.catalog import Catalog
from strongroom.catalog.types import JobState
from strongroom.config.schedule import parse_schedule
from strongroom.engine.clock import ManualClock
from strongroom.engine.events import Event
from strongroom.engine.runs import ScheduledRule
from strongroom.engine.scheduler import Scheduler, decide
from strongroom.engine.states import JobStateMachine
from tests.support.catalog import T0
from tests.support.scheduling import (
    CONTINUOUS,
    fire_state,
    run_jobs,
    runs,
    seed_plan,
    seed_resources,
)
from tests.unit.engine.support import of_type


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC)


def nightly(policy: str) -> dict[str, object]:
    return {
        "name": "nightly",
        "schedule": "cron(0 3 * * ? *)",
        "start_window_minutes": 60,
        "completion_window_minutes": 240,
        "missed_run_policy": policy,
    }


@pytest.fixture
def resources(catalog: Catalog) -> Catalog:
    seed_resources(catalog)
    return catalog


@pytest.mark.parametrize(
    ("policy", "back_at", "fires"),
    [
        ("run-once-in-window", at(2, 3, 30), True),  # inside the 60-minute start window
        ("run-once-in-window", at(2, 4, 0), False),  # the window just closed
        ("skip", at(2, 3, 4), True),  # within the misfire grace: an ordinary late tick
        ("skip", at(2, 3, 30), False),
    ],
)
def test_a_firing_missed_while_down_follows_the_rules_policy(
    resources: Catalog,
    machine: JobStateMachine,
    clock: ManualClock,
    events: list[Event],
    policy: str,
    back_at: datetime,
    fires: bool,
) -> None:
    seed_plan(resources, [nightly(policy)], plan="p")
    Scheduler(machine).tick()  # sees the rule at T0, then the daemon is down

    clock.set(back_at)
    report = Scheduler(machine).tick()  # a new scheduler: the state lives in the catalog

    fired = runs(resources, plan="p")
    state = fire_state(resources, "p", "nightly")
    assert state is not None
    assert state.next_fire_at == at(3, 3)
    if fires:
        (run,) = fired
        assert run.fired_at == at(2, 3)
        # The start window still counts from the scheduled time: what is left of it.
        assert {job.start_by for job in run_jobs(resources, run.id)} == {at(2, 4)}
        assert (state.last_fired_at, state.missed_firings) == (at(2, 3), 0)
        assert report.skipped == ()
    else:
        assert fired == []
        assert (state.last_fired_at, state.missed_firings) == (None, 1)
        (skipped,) = report.skipped
        assert (skipped.rule, skipped.count, skipped.first) == ("p/nightly", 1, at(2, 3))
        (event,) = of_type(events, "backup.run.skipped")
        assert (event.payload["count"], event.payload["policy"]) == (1, policy)


def test_a_week_down_starts_at_most_one_run_per_rule_never_a_burst(
    resources: Catalog, machine: JobStateMachine, clock: ManualClock
) -> None:
    seed_plan(resources, [CONTINUOUS], plan="p")
    Scheduler(machine).tick()

    clock.set(at(8, 12, 20))  # a week later, 20 minutes after a firing
    scheduler = Scheduler(machine)
    report = scheduler.tick()

    (run,) = runs(resources, plan="p")
    assert run.fired_at == at(8, 12)  # only the latest firing, inside its start window
    assert len(run_jobs(resources, run.id)) == 2
    (skipped,) = report.skipped
    # Every 6 hours from Jan 1 18:00 to Jan 8 06:00: 27 firings missed.
    assert (skipped.count, skipped.first, skipped.last) == (27, at(1, 18), at(8, 6))
    state = fire_state(resources, "p", "continuous-backup")
    assert state is not None and state.missed_firings == 27
    assert state.next_fire_at == at(8, 18)
    for _ in range(5):  # ticking on does not fire again until the next fire time
        clock.advance(timedelta(minutes=5))
        assert scheduler.tick().started == ()
    assert len(runs(resources, plan="p")) == 1


def test_a_rule_created_while_the_scheduler_was_down_counts_from_its_creation(
    resources: Catalog, machine: JobStateMachine, clock: ManualClock
) -> None:
    seed_plan(resources, [nightly("run-once-in-window")], plan="p", at=at(2, 2))
    clock.set(at(2, 3, 10))

    Scheduler(machine).tick()

    (run,) = runs(resources, plan="p")
    assert (run.fired_at, run.state) == (at(2, 3), JobState.RUNNING)


RULE = ScheduledRule(
    id=1,
    plan_id=1,
    plan="p",
    name="r",
    schedule="cron(0/15 * * * ? *)",
    timezone="Europe/Berlin",
    vault_id=1,
    vault="v",
    start_window_minutes=60,
)


@settings(max_examples=60, deadline=None)
@given(
    down=st.integers(min_value=0, max_value=60 * 24 * 3),
    policy=st.sampled_from(["run-once-in-window", "skip"]),
)
def test_decide_runs_at_most_the_latest_due_firing_and_counts_the_rest(
    down: int, policy: str
) -> None:
    schedule = parse_schedule(RULE.schedule)
    rule = ScheduledRule(**{**RULE.__dict__, "missed_run_policy": policy})
    first = schedule.next_after(T0, RULE.timezone)
    assert first is not None
    first = first.astimezone(UTC)
    now = first + timedelta(minutes=down)

    decision = decide(rule, schedule, first, now)

    assert decision is not None
    due = [first, *schedule.next_fire_times(first, down // 15 + 1, RULE.timezone)]
    due = [moment.astimezone(UTC) for moment in due if moment <= now]
    latest = due[-1]
    assert decision.next_fire_at is not None and decision.next_fire_at > now
    assert decision.next_fire_at - now <= timedelta(minutes=15)
    if decision.fire_at is not None:
        assert decision.fire_at == latest
        assert now - latest < timedelta(minutes=60)
    assert decision.missed + (decision.fire_at is not None) == len(due)
    assert (decision.first_missed is None) == (decision.missed == 0)

"""Jobs the daemon's scheduler starts are audit entries, with the scheduler as actor."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from strongroom.catalog import open_catalog
from strongroom.catalog.audit import EntryFilter, check_chain, iter_entries
from strongroom.engine.clock import ManualClock
from strongroom.engine.events import EventBus
from strongroom.engine.scheduler import Scheduler
from strongroom.engine.states import JobStateMachine
from strongroom.services.audit.scheduled import audit_scheduled_runs, scheduler_actor
from strongroom.services.context import Actor
from tests.support.scheduling import CONTINUOUS, run_jobs, runs, seed_plan, seed_resources

EVENING = datetime(2030, 1, 1, 18, tzinfo=UTC)


def test_every_job_a_run_queues_is_a_backup_start_entry_of_the_scheduler(tmp_path: Path) -> None:
    actor = Actor(name="strongroom-scheduler@box", origin="daemon on box pid 1 as ops")
    with open_catalog(None, tmp_path / "home") as catalog:
        seed_resources(catalog)
        seed_plan(catalog, [CONTINUOUS])
        clock = ManualClock(EVENING)
        machine = JobStateMachine(catalog, EventBus(catalog, clock), clock)
        Scheduler(machine, on_run_started=audit_scheduled_runs(actor)).tick()

        (run,) = runs(catalog)
        jobs = {job.id: job for job in run_jobs(catalog, run.id)}
        with catalog.session(readonly=True) as session:
            entries = list(iter_entries(session, EntryFilter(action="backup.start")))
            chain = check_chain(session)
    assert chain.intact and chain.entries == 2
    assert {entry.subject for entry in entries} == set(jobs) and len(jobs) == 2
    for entry in entries:
        assert (entry.actor, entry.origin, entry.outcome) == (
            actor.name,
            actor.origin,
            "succeeded",
        )
        assert entry.at == EVENING
        assert (
            entry.reason == "rule production/continuous-backup fired at 2030-01-01T18:00:00+00:00"
        )
        assert entry.details["run_id"] == run.id
        assert entry.details["resource"] == jobs[entry.subject].resource
        assert entry.details["rule"] == "production/continuous-backup"
        assert entry.details["vault"] == "production"


def test_the_scheduler_actor_names_the_daemon_and_its_user() -> None:
    actor = scheduler_actor()
    assert actor.name.startswith("strongroom-scheduler@")
    assert actor.origin.startswith("daemon on ") and " as " in actor.origin

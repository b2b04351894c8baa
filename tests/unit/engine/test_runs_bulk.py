"""A run creates its jobs in bulk (``Work.create_pending``); the jobs, their transitions
and their events must be exactly those that creating each job one by one gives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.events import Event
from strongroom.engine.jobs import JobService
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import JobView
from tests.support.catalog import T0


def test_bulk_created_jobs_match_jobs_created_one_by_one(
    machine: JobStateMachine, service: JobService, events: list[Event]
) -> None:
    single = service.create_job(
        JobKind.BACKUP, "orders-db", rule="daily/windowed", params={"fired_at": "t"}
    )
    one = service.get(single)
    singles = list(events)
    events.clear()

    bulk = replace(one, id="00000000-0000-0000-0000-000000000001")
    with machine.work() as work:
        work.create_pending([bulk], reason="queued")
    two = service.get(bulk.id)

    assert _comparable(two) == _comparable(one)
    assert [
        (t.from_state, t.to_state, t.reason, t.attempt) for t in service.transitions(bulk.id)
    ] == [(t.from_state, t.to_state, t.reason, t.attempt) for t in service.transitions(single)]
    assert [(e.type, _without_id(e.payload)) for e in events] == [
        (e.type, _without_id(e.payload)) for e in singles
    ]
    assert all(e.id is not None for e in events)
    assert [e.id for e in events] == sorted(e.id for e in events if e.id is not None)


def _without_id(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {**payload, "job": {**payload["job"], "id": "-"}}


def _comparable(job: JobView) -> JobView:
    return replace(job, id="-", created_at=T0, updated_at=T0)


def test_bulk_creation_of_many_jobs_keeps_their_order_and_states(
    machine: JobStateMachine, service: JobService, events: list[Event]
) -> None:
    template = service.get(service.create_job(JobKind.BACKUP, "cache", "main"))
    events.clear()
    jobs = [replace(template, id=f"00000000-0000-0000-0000-{n:012d}") for n in range(50)]

    with machine.work() as work:
        work.create_pending(jobs)

    assert {service.get(job.id).state for job in jobs} == {JobState.PENDING}
    queued = [e.subject for e in events if e.type == "backup.job.queued"]
    assert queued == [job.id for job in jobs]

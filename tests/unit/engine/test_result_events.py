"""Events a handler returns with its result (``JobResult.events``) commit with the job's end."""

from __future__ import annotations

from sqlalchemy.orm import Session

from strongroom.catalog import Catalog
from strongroom.catalog.event_types import GAP_DETECTED
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.context import JobContext, JobResult
from strongroom.engine.events import Event
from strongroom.engine.jobs import JobService
from strongroom.errors import ConflictError
from tests.support.waiting import PATIENCE
from tests.unit.engine.conftest import MakeExecutor
from tests.unit.engine.test_executor_claims import recorder

GAP = {"topic": "orders", "partition": 0, "from_offset": 15, "to_offset": 18}


def test_a_results_events_are_published_with_the_jobs_end(
    catalog: Catalog, service: JobService, make_executor: MakeExecutor, events: list[Event]
) -> None:
    job_id = service.create_job(JobKind.BACKUP, "orders-db", "main")

    def handler(context: JobContext) -> JobResult:
        result = recorder(catalog, job_id, "point-with-a-gap")
        return JobResult(
            result.data, record=result.record, events=[(GAP_DETECTED, "point-with-a-gap", GAP)]
        )

    make_executor({JobKind.BACKUP: handler}).run_until_idle(timeout=PATIENCE)

    assert service.get(job_id).state is JobState.COMPLETED
    [gap] = [event for event in events if event.type == GAP_DETECTED]
    assert (gap.subject, dict(gap.payload)) == ("point-with-a-gap", GAP)
    assert gap.id is not None  # stored in the catalog, so the outbox delivers it


def test_a_result_that_is_not_recorded_publishes_none_of_its_events(
    catalog: Catalog, service: JobService, make_executor: MakeExecutor, events: list[Event]
) -> None:
    job_id = service.create_job(JobKind.BACKUP, "orders-db", "main")

    def refused(session: Session) -> None:
        raise ConflictError("the catalog refused the point")

    def handler(context: JobContext) -> JobResult:
        return JobResult({}, record=refused, events=[(GAP_DETECTED, "never-recorded", GAP)])

    make_executor({JobKind.BACKUP: handler}).run_until_idle(timeout=PATIENCE)

    assert service.get(job_id).state is JobState.FAILED
    assert [event for event in events if event.type == GAP_DETECTED] == []

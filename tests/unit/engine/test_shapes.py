"""Every event the engine publishes, and every job in it, has the documented shape."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from strongroom.catalog.shapes import EventShape, JobEventPayload
from strongroom.catalog.types import JobKind
from strongroom.engine.clock import ManualClock
from strongroom.engine.context import JobContext, JobResult
from strongroom.engine.events import Event, event_document
from strongroom.engine.jobs import JobService
from strongroom.engine.retry import RetryPolicy
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import job_document
from strongroom.errors import NetworkError
from tests.support.waiting import PATIENCE
from tests.unit.engine.conftest import MakeExecutor

BACKUP = JobKind.BACKUP


def validator(model: type[BaseModel]) -> Any:
    """A JSON Schema validator for what the model writes (a dev dependency: never skipped)."""
    jsonschema = importlib.import_module("jsonschema")
    schema = model.model_json_schema(mode="serialization", by_alias=True)
    return jsonschema.Draft202012Validator(schema)


def test_every_job_event_of_a_retried_then_escalated_job_has_the_documented_shape(
    machine: JobStateMachine,
    service: JobService,
    clock: ManualClock,
    events: list[Event],
    make_executor: MakeExecutor,
) -> None:
    def handler(context: JobContext) -> JobResult:
        context.progress(5, 10, "tables")
        raise NetworkError("connection reset by peer")

    executor = make_executor({BACKUP: handler}, heartbeat_interval=3600)
    job_id = service.create_job(
        BACKUP, "orders-db", "main", rule="daily/nightly", retry_policy=RetryPolicy(2, 60, 1.0)
    )
    executor.run_until_idle(timeout=PATIENCE)
    clock.advance(60)
    executor.run_until_idle(timeout=PATIENCE)

    documents = [event_document(event) for event in events]
    assert {document["type"] for document in documents} >= {
        "backup.job.created",
        "backup.job.queued",
        "backup.job.started",
        "backup.job.retry_scheduled",
        "backup.job.failed",
        "backup.escalation",
    }
    events_schema, payload_schema = validator(EventShape), validator(JobEventPayload)
    for document in documents:
        events_schema.validate(document)
        assert document["schema_version"] == 1 and document["subject"] == job_id
        payload_schema.validate(document["payload"])
        job = document["payload"]["job"]
        assert (job["schema_version"], job["id"], job["max_attempts"]) == (1, job_id, 2)
        assert "job_id" not in document["payload"]

    final = service.get(job_id)
    escalation = next(d for d in documents if d["type"] == "backup.escalation")
    assert escalation["payload"]["job"] == job_document(final)
    assert escalation["payload"]["consecutive_failures"] == 2
    assert escalation["payload"]["job"]["error"] == {
        "code": "NetworkError",
        "message": "connection reset by peer",
        "retryable": True,
    }
    changes = [d["payload"] for d in documents if d["type"] == "backup.job.state_changed"]
    assert [(c["from_state"], c["job"]["state"]) for c in changes] == [
        (None, "CREATED"),
        ("CREATED", "PENDING"),
        ("PENDING", "RUNNING"),
        ("RUNNING", "PENDING"),
        ("PENDING", "RUNNING"),
        ("RUNNING", "FAILED"),
    ]

"""Every event type strongroom publishes is in the event catalog, with a severity."""

from __future__ import annotations

from strongroom.catalog.event_types import default_severity, known_types
from strongroom.engine import events, outbox, runs
from strongroom.services.retention import audit


def test_every_published_type_is_catalogued() -> None:
    published = {
        events.ESCALATION,
        events.ESCALATION_RESOLVED,
        events.POINT_CREATED,
        events.RESTORE_TEST_PASSED,
        events.RESTORE_TEST_FAILED,
        runs.RUN_STARTED,
        runs.RUN_SKIPPED,
        runs.RUN_COMPLETED,
        outbox.DELIVERY_FAILED,
        *(
            value
            for name, value in vars(audit).items()
            if name.isupper() and isinstance(value, str) and "." in value
        ),
        *(
            events.job_event_type(kind, name)
            for kind in ("backup", "restore", "verify", "copy", "delete")
            for name in (events.COMPLETED, events.FAILED, events.RETRY_SCHEDULED, events.EXPIRED)
        ),
    }

    assert published - set(known_types()) == set()


def test_an_escalation_is_critical_and_a_completion_is_info() -> None:
    assert default_severity("backup.escalation") == "critical"
    assert default_severity("verify.job.completed") == "info"
    assert default_severity("backup.job.failed") == "warning"

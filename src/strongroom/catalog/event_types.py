"""The event catalog: every event type strongroom publishes, with its subject, payload,
default severity and who publishes it.

Event rules match these names (shell-style patterns); notifications take the default
severity from here unless a rule overrides it; ``docs/events.md`` shows the table
generated from :data:`EVENT_TYPES` (``dev/gen-event-docs``). The catalog is versioned
with the shapes (:data:`strongroom.catalog.shapes.SCHEMA_VERSION`): a type is only ever
added; renaming or removing one, or changing its payload's meaning, raises the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final, Literal

Severity = Literal["info", "warning", "critical"]

JOB_KINDS: Final = ("backup", "restore", "verify", "copy", "delete")
GAP_DETECTED: Final = "backup.gap_detected"
"""A backup found data deleted before it could be read (a Kafka retention gap)."""


@dataclass(frozen=True)
class EventType:
    """One event type: its dotted name (``{kind}`` stands for each job kind), what its
    subject is, what its payload holds, its default severity and who publishes it."""

    name: str
    subject: str
    payload: str
    severity: Severity
    publisher: str


_JOB = "a job event payload (JobEventPayload)"

EVENT_TYPES: Final[tuple[EventType, ...]] = (
    EventType(
        "{kind}.job.state_changed", "job id", _JOB + ": every state change", "info", "engine"
    ),
    EventType("{kind}.job.created", "job id", _JOB + ": the job became CREATED", "info", "engine"),
    EventType("{kind}.job.queued", "job id", _JOB + ": the job became PENDING", "info", "engine"),
    EventType("{kind}.job.started", "job id", _JOB + ": the job became RUNNING", "info", "engine"),
    EventType("{kind}.job.completed", "job id", _JOB + ": the job COMPLETED", "info", "engine"),
    EventType(
        "{kind}.job.partial", "job id", _JOB + ": the job ended PARTIAL", "warning", "engine"
    ),
    EventType("{kind}.job.failed", "job id", _JOB + ": the job FAILED", "warning", "engine"),
    EventType("{kind}.job.aborted", "job id", _JOB + ": the job was ABORTED", "warning", "engine"),
    EventType(
        "{kind}.job.expired", "job id", _JOB + ": its start window closed", "warning", "engine"
    ),
    EventType(
        "{kind}.job.retry_scheduled",
        "job id",
        _JOB + ": an attempt failed, the next waits for `job.next_attempt_at`",
        "info",
        "engine",
    ),
    EventType(
        "{kind}.job.progress",
        "job id",
        _JOB + " whose `job.progress` changed (in process only, never stored or routed)",
        "info",
        "engine",
    ),
    EventType(
        "backup.escalation",
        "job id",
        _JOB + " with `reason`, `component`, `consecutive_failures`, `failing_since`: a "
        "failure survived its retries",
        "critical",
        "engine",
    ),
    EventType(
        "backup.escalation.resolved",
        "job id",
        _JOB + " with `component`: a success after an escalated failure",
        "info",
        "engine",
    ),
    EventType(
        "restore_test.passed",
        "job id",
        _JOB + ": a verify job with a restore test completed",
        "info",
        "engine",
    ),
    EventType(
        "restore_test.failed",
        "job id",
        _JOB + ": a verify job with a restore test failed past its retries",
        "warning",
        "engine",
    ),
    EventType(
        "backup.run.started",
        "run id",
        "`run_id`, `plan`, `rule`, `rules`, `vault`, `fired_at`, `allow_partial`, `jobs`, `skipped`",
        "info",
        "engine",
    ),
    EventType(
        "backup.run.skipped",
        "`plan/rule`",
        "the firing (`plan`, `rule` …) and `count`, `first`, `last`, `policy`, `reason`",
        "warning",
        "engine",
    ),
    EventType(
        "backup.run.completed",
        "run id",
        "the run's summary: `run_id`, `state`, counts, sizes, `problems` (one per rule firing)",
        "info",
        "engine",
    ),
    EventType(
        "recovery_point.created",
        "recovery point id",
        _JOB + ": the backup job that committed the point",
        "info",
        "engine",
    ),
    EventType(
        GAP_DETECTED,
        "recovery point id",
        "`resource`, `resource_type`, `vault`, `point_id`, `job_id`, `topic`, `partition`, "
        "`from_offset`, `to_offset`: a Kafka partition's log now starts past the checkpoint, "
        "so records from `from_offset` up to `to_offset` were deleted before a backup read them",
        "warning",
        "backup job",
    ),
    EventType(
        "recovery_point.moved_to_cold", "recovery point id", "`actor`, changes", "info", "lifecycle"
    ),
    EventType(
        "recovery_point.deleted", "recovery point id", "`actor`, changes", "info", "lifecycle"
    ),
    EventType(
        "recovery_point.delete_refused",
        "recovery point id",
        "`actor`, why the vault lock or a legal hold refused",
        "warning",
        "lifecycle",
    ),
    EventType(
        "recovery_point.legal_hold.added", "recovery point id", "`actor`, `reason`", "info", "cli"
    ),
    EventType(
        "recovery_point.legal_hold.removed", "recovery point id", "`actor`, `reason`", "info", "cli"
    ),
    EventType("vault.lock.set", "vault name", "`actor` and the lock", "info", "apply, cli"),
    EventType("vault.lock.changed", "vault name", "`actor` and the lock", "info", "apply, cli"),
    EventType("vault.lock.removed", "vault name", "`actor` and the lock", "warning", "apply, cli"),
    EventType(
        "vault.lock.change_refused", "vault name", "`actor` and the lock", "warning", "apply, cli"
    ),
    EventType("lifecycle.run.completed", "`lifecycle`", "`actor`, `counts`", "info", "lifecycle"),
    EventType(
        "monitor.backup_age_exceeded",
        "resource name",
        "MonitorAlertPayload: the newest point is older than the threshold",
        "critical",
        "monitor",
    ),
    EventType(
        "monitor.failures",
        "`kind/resource`",
        "MonitorAlertPayload: jobs of a resource failed within the failure window",
        "warning",
        "monitor",
    ),
    EventType(
        "monitor.storage_exceeded",
        "vault name",
        "MonitorAlertPayload: the vault stores more than its threshold",
        "warning",
        "monitor",
    ),
    EventType(
        "monitor.verification_overdue",
        "resource name",
        "MonitorAlertPayload: no verify within the policy",
        "warning",
        "monitor",
    ),
    EventType(
        "monitor.lifecycle_overdue",
        "recovery point id",
        "MonitorAlertPayload: a point's cold move or deletion is overdue past the grace",
        "warning",
        "monitor",
    ),
    EventType(
        "monitor.lifecycle_run_overdue",
        "`lifecycle`",
        "MonitorAlertPayload: the lifecycle runner has not run over every vault within the "
        "threshold",
        "warning",
        "monitor",
    ),
    EventType(
        "monitor.gc_overdue",
        "vault name",
        "MonitorAlertPayload: points were deleted from the vault and its garbage collection "
        "has not run since, past the threshold",
        "warning",
        "monitor",
    ),
    EventType(
        "monitor.replication_lag_exceeded",
        "`source vault/resource/destination vault`",
        "MonitorAlertPayload: a point has waited for its copy longer than the threshold",
        "warning",
        "monitor",
    ),
    EventType(
        "monitor.resolved",
        "the alert's subject",
        "`check`, `subject`: an alert the monitor raised no longer holds",
        "info",
        "monitor",
    ),
    EventType(
        "delivery.failed",
        "event id",
        "DeliveryFailedPayload: a delivery ran out of attempts or its event grew too old",
        "warning",
        "outbox",
    ),
)
"""Every event type, in the order docs/events.md lists them."""


def _expanded(name: str) -> list[str]:
    if "{kind}" not in name:
        return [name]
    return [name.replace("{kind}", kind) for kind in JOB_KINDS]


def default_severity(event_type: str) -> Severity:
    """Return the default severity of an event type (``info`` for a type not listed)."""
    for entry in EVENT_TYPES:
        if event_type in _expanded(entry.name):
            return entry.severity
    return "info"


def known_types() -> list[str]:
    """Return every concrete event type name (``{kind}`` expanded)."""
    return [name for entry in EVENT_TYPES for name in _expanded(entry.name)]


def pattern_matches_any(pattern: str) -> bool:
    """Tell whether a shell-style type pattern matches at least one known event type."""
    return any(fnmatchcase(name, pattern) for name in known_types())


def type_table() -> str:
    """Return the markdown table of every event type (docs/events.md)."""
    lines = [
        "| type | subject | payload | severity | published by |",
        "|---|---|---|---|---|",
    ]
    for entry in EVENT_TYPES:
        payload = entry.payload.replace("|", "\\|")
        lines.append(
            f"| `{entry.name}` | {entry.subject} | {payload} | {entry.severity} | "
            f"{entry.publisher} |"
        )
    return "\n".join(lines) + "\n"

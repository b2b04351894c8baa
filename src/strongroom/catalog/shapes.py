"""The JSON shapes of a job and of an event, as every interface and consumer sees them.

One source for what ``--output json`` prints for a job, what a job event carries, and
what notifications, metrics, the REST API and event rules will read: these pydantic
models. ``docs/events.md`` documents them; its field tables are generated from the models
(:func:`field_table`, ``dev/gen-event-docs``) and a test keeps them in step.

Every document carries ``schema_version``. Adding a field keeps the version; renaming or
removing a field, or changing its type or meaning, raises it (see ``docs/events.md``).
"""

from __future__ import annotations

import re
import types
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from strongroom.catalog.event_types import type_table
from strongroom.catalog.types import JobKind, JobState

SCHEMA_VERSION: Final = 1
"""The version of the job and event shapes below."""


Time = Annotated[
    datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json")
]
"""An aware time, written as Python's ISO 8601 (``2030-01-01T12:00:00+00:00``)."""


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobErrorShape(_Shape):
    """Why a job, or its last attempt, failed."""

    code: str = Field(
        description="The error's stable code: the seed's AWS name where one exists "
        "(`ThrottlingException`, `ResourceNotFoundException` …), else strongroom's "
        "(`IntegrityError`, `ResourceInUseException` …); `UnexpectedError` for a bug."
    )
    message: str = Field(description="What went wrong, secrets masked.")
    retryable: bool = Field(description="Whether a retry of the same job could succeed.")


class JobShape(_Shape):
    """One job: a backup, restore, verify, copy or delete and where it stands."""

    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="The version of this shape."
    )
    id: str = Field(description="The job's id (a UUID); `describe-job` takes any unique prefix.")
    kind: JobKind = Field(description="What the job does.")
    state: JobState = Field(description="Where the job stands (docs/catalog.md: state machine).")
    resource: str | None = Field(
        description="The resource's name (backup, restore, verify; a copy: the source point's)."
    )
    resource_type: str | None = Field(description="The resource's type (`postgres`, `files` …).")
    vault: str | None = Field(
        description="The vault the job reads or writes (a copy: the destination vault)."
    )
    rule: str | None = Field(description="`plan/rule` for a job a rule started; null if ad hoc.")
    run_id: str | None = Field(description="The run (one firing of a rule) the job belongs to.")
    params: dict[str, Any] = Field(
        description="The job's parameters (restore target; a copy's `point_id`, "
        "`source_vault`, `lifecycle`, `trigger` …)."
    )
    attempt: int = Field(
        description="Which attempt this is, from 1: a retry is the next attempt of the job."
    )
    max_attempts: int = Field(
        description="Attempts the job may make in all, the first included: the retry "
        "policy's MaxAttempts (retries) plus one."
    )
    retry_interval_seconds: float = Field(description="Wait before the first retry.")
    retry_backoff_rate: float = Field(description="Factor the wait grows by at each retry.")
    allow_partial: bool = Field(description="Whether a PARTIAL result is kept.")
    created_at: Time = Field(description="When the job was created.")
    updated_at: Time = Field(description="When the job last changed.")
    started_at: Time | None = Field(description="When its last attempt started.")
    finished_at: Time | None = Field(description="When it ended.")
    duration_seconds: float | None = Field(
        description="How long the last attempt ran, started to finished."
    )
    next_attempt_at: Time | None = Field(
        description="When a queued attempt may start (a retry waits for it)."
    )
    start_by: Time | None = Field(description="End of the start window: EXPIRED after it.")
    complete_by: Time | None = Field(description="End of the completion window: ABORTED after it.")
    progress: dict[str, Any] | None = Field(
        description="The running attempt's progress (`done`, `total` bytes, `message`)."
    )
    cancel_requested: bool = Field(description="Whether someone asked the job to stop.")
    cancel_reason: str | None = Field(description="Why it was asked to stop.")
    worker: str | None = Field(description="The worker holding the job's lease, if any.")
    error: JobErrorShape | None = Field(description="Why it (or its last attempt) failed.")
    result: dict[str, Any] | None = Field(
        description="What the job produced (`point_id`, sizes, counts …), by kind."
    )


class CopyResultShape(_Shape):
    """The `result` of a completed copy job (docs/copies.md)."""

    point_id: str = Field(description="The copy: a recovery point of the destination vault.")
    source_point_id: str = Field(description="The point it was copied from.")
    source_vault: str = Field(description="The vault of the source point.")
    resource: str | None = Field(description="The source point's resource.")
    vault: str = Field(description="The destination vault.")
    streams: int = Field(description="Streams copied.")
    bytes_copied: int = Field(description="Bytes read from the source and written.")
    logical_size: int = Field(description="Sum of the copy's stream sizes.")
    stored_size: int = Field(description="Stored bytes of the chunks the copy references.")
    new_stored_size: int = Field(
        description="Bytes the copy stored: what the destination did not hold already."
    )
    chunk_count: int = Field(description="Distinct chunks the copy references.")
    new_chunk_count: int = Field(description="Chunks the copy stored.")
    move_to_cold_at: Time | None = Field(description="When the copy moves to the cold tier.")
    delete_at: Time | None = Field(description="When the copy is deleted.")


class TransitionShape(_Shape):
    """One recorded state change of a job."""

    from_: JobState | None = Field(
        alias="from", description="The state before; null when the job was created."
    )
    to: JobState = Field(description="The state after.")
    at: Time = Field(description="When it changed.")
    reason: str = Field(description="Why, in words.")
    attempt: int = Field(description="The job's attempt at the time.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class JobDescriptionShape(JobShape):
    """A job with every state change it went through (`describe-job`, `--wait`)."""

    transitions: list[TransitionShape] = Field(description="Every state change, oldest first.")


class JobEventPayload(_Shape):
    """The payload of a ``{kind}.job.*`` event and of ``backup.escalation``."""

    job: JobShape = Field(description="The job as it is after the event.")
    from_state: JobState | None = Field(
        default=None,
        description="For a state change: the state before (null when the job was created).",
    )
    reason: str | None = Field(
        default=None, description="Why the job changed state, or why the engine gave up."
    )
    component: str | None = Field(
        default=None,
        description="`backup.escalation` only: the failing component, `kind/resource[/plan/rule]`.",
    )
    consecutive_failures: int | None = Field(
        default=None, description="`backup.escalation` only: failed attempts in a row."
    )
    failing_since: Time | None = Field(
        default=None, description="`backup.escalation` only: the first of those failures."
    )


class EventShape(_Shape):
    """One thing that happened, as the event feed stores it and consumers receive it."""

    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="The version of this shape."
    )
    id: int | None = Field(
        description="Its place in the catalog's event feed (grows with every event); "
        "null for an event dispatched without being stored (`{kind}.job.progress`)."
    )
    type: str = Field(description="A dotted name: `backup.job.completed`, `vault.lock.set` …")
    subject: str = Field(
        description="What it is about: a job id, run id, recovery point id or vault name."
    )
    at: Time = Field(description="When it happened.")
    payload: dict[str, Any] = Field(description="The details; their shape depends on `type`.")


class DeliveryFailedPayload(_Shape):
    """The payload of ``delivery.failed``: a delivery the outbox gave up on (dead letter)."""

    event_id: int = Field(description="The event that was not delivered.")
    event_type: str = Field(description="Its type.")
    rule: str = Field(description="The event rule whose target it was.")
    target: str = Field(
        description="The target inside the rule: `channel:NAME`, `start_job:KIND` or "
        "`webhook:INDEX`."
    )
    attempts: int = Field(description="Attempts made.")
    error: str = Field(description="Why the last attempt failed, or why none was made.")


class MonitorAlertPayload(_Shape):
    """The payload of a ``monitor.*`` alert event (``strongroom monitor``)."""

    check: str = Field(description="The alert's event type: `monitor.backup_age_exceeded` …")
    subject: str = Field(
        description="What it is about: a resource, `kind/resource`, a vault, a point."
    )
    message: str = Field(description="What is wrong, in words.")
    value: float = Field(description="The measured value (seconds, bytes or a count).")
    threshold: float = Field(description="The threshold it crossed, in the same unit.")
    resource: str | None = Field(description="The resource concerned, if one.")
    vault: str | None = Field(description="The vault concerned, if one.")


# --- the tables of docs/events.md -----------------------------------------------------------

DOCUMENTED: Final[tuple[type[BaseModel], ...]] = (
    EventShape,
    JobEventPayload,
    JobShape,
    JobErrorShape,
    TransitionShape,
    JobDescriptionShape,
    CopyResultShape,
    DeliveryFailedPayload,
    MonitorAlertPayload,
)
"""The shapes docs/events.md shows a table of, in its order."""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        names = [_type_name(arg) for arg in get_args(annotation) if arg is not type(None)]
        nullable = type(None) in get_args(annotation)
        return " or ".join(names) + (" or null" if nullable else "")
    if origin is Literal:
        return " or ".join(f"`{arg!r}`" for arg in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        return "object"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return annotation.__name__
        if issubclass(annotation, JobKind | JobState):
            return "string: " + ", ".join(f"`{member.value}`" for member in annotation)
        if annotation is datetime:
            return "string (ISO 8601 time, with offset)"
        return {str: "string", int: "integer", float: "number", bool: "boolean"}[annotation]
    raise TypeError(f"no documented name for {annotation!r}")


def field_table(model: type[BaseModel]) -> str:
    """Return the markdown table of a shape's fields: name, type, meaning (for a shape
    that extends another documented one, only the fields it adds)."""
    inherited: set[str] = set()
    for base in model.__mro__[1:]:
        if isinstance(base, type) and issubclass(base, BaseModel) and base in DOCUMENTED:
            inherited |= set(base.model_fields)
    lines = ["| field | type | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in inherited:
            continue
        key = field.alias or name
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{key}` | {_type_name(field.annotation)} | {description} |")
    return "\n".join(lines) + "\n"


_GENERATED = re.compile(
    r"(<!-- generated: (?P<name>\w+) -->\n)(?P<table>.*?)(<!-- end generated -->)", re.DOTALL
)


def refresh_tables(text: str) -> str:
    """Return ``text`` (docs/events.md) with every generated table rewritten from the models.

    Raises ``KeyError`` for a marker naming a shape that is not documented.
    """
    shapes = {model.__name__: model for model in DOCUMENTED}

    def table(match: re.Match[str]) -> str:
        if match["name"] == "EventTypes":
            return match[1] + type_table() + match[4]
        return match[1] + field_table(shapes[match["name"]]) + match[4]

    return _GENERATED.sub(table, text)

"""Plans: rules (when, where, how long to keep) and selections (which resources)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from strongroom.config.resources import ResourceType
from strongroom.config.schedule import parse_schedule, resolve_timezone
from strongroom.config.types import (
    NAME_PATTERN,
    ConfigModel,
    Name,
    Problem,
    RuleName,
    TagKey,
    TagMap,
    TagValue,
    raise_problems,
    repeats,
)
from strongroom.config.vaults import MAX_DAYS
from strongroom.errors import ConfigError

MIN_START_WINDOW_MINUTES: Final = 60
"""AWS Backup refuses a start window under 60 minutes; strongroom keeps the same floor."""
MIN_WINDOW_GAP_MINUTES: Final = 60
"""The completion window must exceed the start window by at least this much (as in AWS)."""
MAX_WINDOW_MINUTES: Final = 52_560_000
"""100 years, AWS Backup's bound for both windows."""


# -- retry ------------------------------------------------------------------------------


class RetryPolicy(ConfigModel):
    """How failed jobs with a retryable error are retried (the seed's RetryPolicy).

    The n-th retry waits ``interval_seconds * backoff_rate ** (n - 1)`` seconds.
    """

    max_attempts: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Retries after the first attempt fails with a retryable error "
        "(Step Functions' MaxAttempts); 0 never retries.",
    )
    interval_seconds: int = Field(
        default=300, ge=1, le=86_400, description="Wait before the first retry, in seconds."
    )
    backoff_rate: float = Field(
        default=2.0, ge=1.0, le=10.0, description="Factor the wait grows by at each retry."
    )

    def delay_before_retry(self, retry_number: int) -> float:
        """Return the seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        if retry_number < 1:
            raise ValueError("retry numbers start at 1")
        return float(self.interval_seconds * self.backoff_rate ** (retry_number - 1))


class RetryOverride(ConfigModel):
    """Per-plan or per-rule changes to the retry policy; unset fields are inherited."""

    max_attempts: int | None = Field(
        default=None, ge=0, le=100, description="Overrides retry.max_attempts."
    )
    interval_seconds: int | None = Field(
        default=None, ge=1, le=86_400, description="Overrides retry.interval_seconds."
    )
    backoff_rate: float | None = Field(
        default=None, ge=1.0, le=10.0, description="Overrides retry.backoff_rate."
    )

    def apply_to(self, base: RetryPolicy) -> RetryPolicy:
        """Return ``base`` with the fields this override sets replaced."""
        changes = self.model_dump(exclude_none=True)
        return base.model_copy(update=changes) if changes else base


# -- rules ------------------------------------------------------------------------------


class Lifecycle(ConfigModel):
    """When recovery points move to the vault's cold tier and when they are deleted."""

    move_to_cold_after_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DAYS,
        description="Days after creation to move to the vault's cold tier; unset never moves.",
    )
    delete_after_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DAYS,
        description="Days after creation to delete; unset keeps recovery points forever.",
    )

    @field_validator("delete_after_days")
    @classmethod
    def _delete_after_cold(cls, delete: int | None, info: ValidationInfo) -> int | None:
        cold = info.data.get("move_to_cold_after_days")
        if cold is not None and delete is not None and delete <= cold:
            raise PydanticCustomError(
                "lifecycle_order",
                f"delete_after_days ({delete}) must be greater than "
                f"move_to_cold_after_days ({cold})",
            )
        return delete


class CopyAction(ConfigModel):
    """After a backup completes, copy the recovery point to another vault (e.g. DR)."""

    destination_vault: Name = Field(description="Name of the vault to copy to.")
    lifecycle: Lifecycle = Field(
        default_factory=Lifecycle, description="Lifecycle of the copy in the destination vault."
    )


def _check_schedule(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("schedule", "a schedule expression is required")
    try:
        parse_schedule(value)
    except ConfigError as exc:
        message = f"{exc} ({exc.hint})" if exc.hint else str(exc)
        raise PydanticCustomError("schedule", message) from None
    return value


Schedule = Annotated[
    str,
    AfterValidator(_check_schedule),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "examples": ["cron(0 3 * * ? *)", "rate(6 hours)", "0 3 * * *"],
        }
    ),
]


def _check_timezone(value: str) -> str:
    try:
        resolve_timezone(value)
    except ConfigError:
        raise PydanticCustomError(
            "timezone", "unknown time zone; use an IANA name such as UTC or Europe/Paris"
        ) from None
    return value


TimeZoneName = Annotated[
    str,
    AfterValidator(_check_timezone),
    WithJsonSchema({"type": "string", "examples": ["UTC", "Europe/Paris"]}),
]


class BackupRule(ConfigModel):
    """When to back up the plan's resources, into which vault, and how long to keep them."""

    name: RuleName = Field(description="Rule name, unique in the plan.")
    schedule: Schedule = Field(
        description="When the rule fires: AWS cron(m h dom mon dow y), rate(n unit), or a "
        "5-field cron expression."
    )
    timezone: TimeZoneName = Field(
        default="UTC", description="IANA time zone the schedule is read in."
    )
    start_window_minutes: int = Field(
        default=60,
        ge=MIN_START_WINDOW_MINUTES,
        le=MAX_WINDOW_MINUTES,
        description="A job that has not started this many minutes after the scheduled time is "
        "cancelled (at least 60).",
    )
    completion_window_minutes: int = Field(
        default=10_080,
        ge=MIN_START_WINDOW_MINUTES + MIN_WINDOW_GAP_MINUTES,
        le=MAX_WINDOW_MINUTES,
        description="A job still running this many minutes after the scheduled time is "
        "cancelled; at least start_window_minutes + 60 (default 7 days, as in AWS).",
    )
    target_vault: Name = Field(description="Name of the vault recovery points are written to.")
    lifecycle: Lifecycle = Field(
        default_factory=Lifecycle, description="Cold-tier move and deletion of recovery points."
    )
    recovery_point_tags: TagMap = Field(
        default_factory=dict, description="Tags given to every recovery point the rule makes."
    )
    copy_actions: list[CopyAction] = Field(
        default_factory=list, description="Copies made after each successful backup."
    )
    allow_partial: bool = Field(
        default=False,
        description="When some resources of a run fail, report the run PARTIAL (the others' "
        "recovery points count as a success) instead of FAILED.",
    )
    missed_run_policy: Literal["run-once-in-window", "skip"] = Field(
        default="run-once-in-window",
        description="After downtime: run once if still inside the start window of a missed "
        "firing, or skip missed firings.",
    )
    retry: RetryOverride | None = Field(
        default=None, description="Retry settings for this rule's jobs; unset fields inherit."
    )

    @field_validator("completion_window_minutes")
    @classmethod
    def _windows(cls, completion: int, info: ValidationInfo) -> int:
        start = info.data.get("start_window_minutes")
        if start is not None and completion < start + MIN_WINDOW_GAP_MINUTES:
            raise PydanticCustomError(
                "window",
                f"completion_window_minutes ({completion}) must be at least "
                f"start_window_minutes + {MIN_WINDOW_GAP_MINUTES} "
                f"({start + MIN_WINDOW_GAP_MINUTES})",
            )
        return completion


# -- selections -------------------------------------------------------------------------


class TagPair(ConfigModel):
    """One tag key and value to compare against a resource's tags."""

    key: TagKey = Field(description="Tag key (case sensitive).")
    value: TagValue = Field(description="Tag value; in *_like conditions, * matches any text.")


def _like(pattern: str, value: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), value, re.DOTALL) is not None


class TagConditions(ConfigModel):
    """Tag conditions that must ALL hold (AWS Backup ``Conditions``, AND logic).

    A resource without the key fails string_equals / string_like and passes
    string_not_equals / string_not_like.
    """

    string_equals: list[TagPair] = Field(
        default_factory=list, description="The tag must have exactly this value."
    )
    string_not_equals: list[TagPair] = Field(
        default_factory=list, description="The tag must be absent or have another value."
    )
    string_like: list[TagPair] = Field(
        default_factory=list, description="The tag must match the pattern (* is a wildcard)."
    )
    string_not_like: list[TagPair] = Field(
        default_factory=list, description="The tag must be absent or not match the pattern."
    )

    def is_empty(self) -> bool:
        """Tell whether no condition is set."""
        return not (
            self.string_equals or self.string_not_equals or self.string_like or self.string_not_like
        )

    def hold_for(self, tags: Mapping[str, str]) -> bool:
        """Tell whether every condition holds for a resource with these tags."""
        return (
            all(tags.get(pair.key) == pair.value for pair in self.string_equals)
            and all(tags.get(pair.key) != pair.value for pair in self.string_not_equals)
            and all(
                pair.key in tags and _like(pair.value, tags[pair.key]) for pair in self.string_like
            )
            and all(
                pair.key not in tags or not _like(pair.value, tags[pair.key])
                for pair in self.string_not_like
            )
        )


_ALL: Final = "*"


def _check_selected_name(value: str) -> str:
    if value != _ALL and not re.fullmatch(NAME_PATTERN, value):
        raise PydanticCustomError("name", "a resource name, or * for every resource")
    return value


SelectedName = Annotated[
    str,
    AfterValidator(_check_selected_name),
    WithJsonSchema({"type": "string", "pattern": f"^(\\*|{NAME_PATTERN})$"}),
]


class Selection(ConfigModel):
    """Which resources a plan covers (AWS Backup ``BackupSelection``).

    A resource is selected when it is named in ``names`` (``*`` names every resource) or
    carries one of ``list_of_tags`` (OR logic) — or, when both are empty, any resource —
    and it also has one of ``resource_types`` (when given), satisfies every condition
    (AND logic) and is not in ``not_names``.
    """

    name: Name = Field(description="Selection name, unique in the plan.")
    names: list[SelectedName] = Field(
        default_factory=list, description="Resources selected by name; * selects every resource."
    )
    list_of_tags: list[TagPair] = Field(
        default_factory=list,
        description="Resources carrying ANY of these tags are selected (AWS ListOfTags, "
        "CDK BackupResource.fromTag).",
    )
    resource_types: list[ResourceType] = Field(
        default_factory=list, description="Only resources of these types; empty allows every type."
    )
    conditions: TagConditions = Field(
        default_factory=TagConditions,
        description="Conditions ALL selected resources must meet (AWS Conditions).",
    )
    not_names: list[Name] = Field(
        default_factory=list, description="Resources never selected, whatever else matches."
    )

    @model_validator(mode="after")
    def _selects_something(self) -> Selection:
        if not (self.names or self.list_of_tags or self.resource_types) and (
            self.conditions.is_empty()
        ):
            raise_problems(
                "Selection",
                [
                    Problem(
                        (),
                        "empty_selection",
                        "a selection needs names, list_of_tags, resource_types or conditions "
                        "(names: ['*'] selects every resource)",
                    )
                ],
            )
        return self

    def selects(self, name: str, resource_type: str, tags: Mapping[str, str]) -> bool:
        """Tell whether the resource ``name`` of ``resource_type`` with ``tags`` is selected."""
        if name in self.not_names:
            return False
        if self.resource_types and resource_type not in self.resource_types:
            return False
        if self.names or self.list_of_tags:
            named = _ALL in self.names or name in self.names
            tagged = any(tags.get(pair.key) == pair.value for pair in self.list_of_tags)
            if not (named or tagged):
                return False
        return self.conditions.hold_for(tags)


# -- plans ------------------------------------------------------------------------------


class PlanConfig(ConfigModel):
    """A backup plan: rules saying when and where, selections saying what."""

    description: str | None = Field(default=None, description="Free text for people.")
    rules: list[BackupRule] = Field(min_length=1, description="The plan's backup rules.")
    selections: list[Selection] = Field(
        default_factory=list, description="Which resources the rules back up."
    )
    retry: RetryOverride | None = Field(
        default=None, description="Retry settings for this plan's jobs; unset fields inherit."
    )
    tags: TagMap = Field(
        default_factory=dict, description="Tags of the plan itself (cost centre, owner …)."
    )

    @field_validator("rules", "selections", mode="after")
    @classmethod
    def _unique_names(
        cls, items: list[BackupRule] | list[Selection]
    ) -> list[BackupRule] | list[Selection]:
        what = "rule" if items and isinstance(items[0], BackupRule) else "selection"
        raise_problems(
            "PlanConfig",
            [
                Problem(
                    (index, "name"), "duplicate_name", f"another {what} is already named {name!r}"
                )
                for index, name in repeats([item.name for item in items])
            ],
        )
        return items

    def rule(self, name: str) -> BackupRule:
        """Return the rule called ``name``; raises :class:`KeyError` if there is none."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

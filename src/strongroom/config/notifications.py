"""The ``notifications`` section: channels and event rules (the EventBridge analogue).

::

    notifications
    ├── channels   name -> one of
    │              apprise   url (a secret reference: Apprise URLs carry tokens)
    │              email     smtp host/port/tls, username, password ref, sender, recipients
    │              pagerduty routing_key ref, events_url
    │              webhook   url, headers (values are secret references)
    │              each with min_severity
    └── rules      [EventRule]: pattern (types, resource_types, states, tags, vaults)
                   -> targets (channel, start_job, webhook), retry (max attempts, max
                   event age), severity override

Every secret is a reference (``env:NAME``, ``file:/path``), resolved when a message is
sent and masked in logs. ``apply`` stores the section in the catalog, where the daemon's
delivery loop reads it afresh at every pass.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from strongroom.config.plans import Lifecycle
from strongroom.config.types import (
    ConfigModel,
    Name,
    Problem,
    SecretRef,
    TagMap,
    raise_problems,
    repeats,
)

Severity = Literal["info", "warning", "critical"]
"""How urgent an event is; a channel receives events at or above its minimum."""

SEVERITIES: Final[tuple[Severity, ...]] = ("info", "warning", "critical")


def severity_rank(severity: Severity) -> int:
    """Return 0, 1 or 2 for info, warning, critical."""
    return SEVERITIES.index(severity)


def _plain_http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        raise PydanticCustomError("http_url", "not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PydanticCustomError("http_url", "an http:// or https:// URL is needed")
    if has_credentials:
        raise PydanticCustomError(
            "http_url", "no credentials in the URL; put them in headers as secret references"
        )
    return value


HttpUrl = Annotated[
    str,
    AfterValidator(_plain_http_url),
    WithJsonSchema({"type": "string", "pattern": "^https?://"}),
]
"""An http(s) URL without credentials (they go in secret references)."""


class _Channel(ConfigModel):
    min_severity: Severity = Field(
        default="info",
        description="Events below this severity are not sent to the channel (severity routing).",
    )


class AppriseChannel(_Channel):
    """Any service Apprise speaks (Slack, Teams, ntfy, SNS, SMS gateways, mailto …)."""

    type: Literal["apprise"] = Field(description="Send through Apprise.")
    url: SecretRef = Field(
        description="Reference to the Apprise URL (`env:SLACK_URL`): such URLs carry tokens, "
        "so the URL itself is a secret."
    )


class EmailChannel(_Channel):
    """strongroom's own HTML email (with a plain-text part) over SMTP."""

    type: Literal["email"] = Field(description="Send strongroom's HTML email over SMTP.")
    host: str = Field(min_length=1, description="The SMTP server's host name.")
    port: int = Field(default=587, ge=1, le=65535, description="The SMTP server's port.")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="`starttls` (upgrade after connecting), `tls` (TLS from the start) or "
        "`none` (plain, for a relay on the same machine).",
    )
    username: str | None = Field(default=None, description="SMTP login name, if any.")
    password: SecretRef | None = Field(default=None, description="Reference to the SMTP password.")
    sender: str = Field(min_length=3, description="The From address.")
    recipients: list[str] = Field(min_length=1, description="The To addresses.")
    subject_prefix: str = Field(default="[strongroom]", description="Put before every subject.")


class PagerDutyChannel(_Channel):
    """Escalation: PagerDuty Events API v2 (trigger once per incident, resolve on success)."""

    type: Literal["pagerduty"] = Field(description="Page through PagerDuty Events API v2.")
    routing_key: SecretRef = Field(description="Reference to the integration's routing key.")
    events_url: HttpUrl = Field(
        default="https://events.pagerduty.com/v2/enqueue",
        description="The Events API v2 enqueue URL.",
    )


class WebhookSettings(ConfigModel):
    """An HTTP endpoint receiving each event as JSON (docs/events.md) in a POST."""

    url: HttpUrl = Field(description="The endpoint (http or https, no credentials in it).")
    headers: dict[str, SecretRef] = Field(
        default_factory=dict,
        description="Headers to send, each value a secret reference (`Authorization: env:HOOK`).",
    )


class WebhookChannel(WebhookSettings, _Channel):
    """A webhook as a named channel."""

    type: Literal["webhook"] = Field(description="POST the event as JSON.")


Channel = Annotated[
    AppriseChannel | EmailChannel | PagerDutyChannel | WebhookChannel,
    Field(discriminator="type"),
]


class EventPattern(ConfigModel):
    """Which events a rule takes: every listed condition must hold (an empty one holds)."""

    types: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description="Event type patterns, shell style (`backup.job.failed`, `*.job.*`).",
    )
    resource_types: list[str] = Field(
        default_factory=list, description="Resource types (`postgres` …); empty: any."
    )
    states: list[str] = Field(
        default_factory=list, description="Job or run states (`FAILED` …); empty: any."
    )
    tags: TagMap = Field(
        default_factory=dict, description="Tags the event's resource must carry (all of them)."
    )
    vaults: list[str] = Field(default_factory=list, description="Vault names; empty: any.")


class StartJob(ConfigModel):
    """A follow-up job on the event's recovery point: verify it, restore-test it, or copy
    it to another vault."""

    kind: Literal["verify", "restore_test", "copy"] = Field(
        description="`verify` (with `read_data`), `restore_test` (restore into a scratch "
        "target and compare) or `copy` (into `destination_vault`)."
    )
    read_data: bool = Field(
        default=True,
        description="Read and check every stored byte (`verify`, `restore_test`; a copy "
        "always reads every byte it copies).",
    )
    destination_vault: Name | None = Field(
        default=None, description="The vault a `copy` goes to (a declared vault; `copy` only)."
    )
    lifecycle: Lifecycle | None = Field(
        default=None,
        description="The copy's own lifecycle, dated from the copy's creation (`copy` only; "
        "none: the copy is kept until deleted by hand).",
    )

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> StartJob:
        problems: list[Problem] = []
        if self.kind == "copy":
            if self.destination_vault is None:
                problems.append(
                    Problem(("destination_vault",), "missing", "a copy needs destination_vault")
                )
        else:
            problems += [
                Problem((name,), "copy_only", f"{name} is for copy jobs, not {self.kind}")
                for name in ("destination_vault", "lifecycle")
                if getattr(self, name) is not None
            ]
        raise_problems("StartJob", problems)
        return self


class Target(ConfigModel):
    """Where a matched event goes: exactly one of ``channel``, ``start_job``, ``webhook``."""

    channel: Name | None = Field(default=None, description="A channel by name.")
    start_job: StartJob | None = Field(default=None, description="Start a follow-up job.")
    webhook: WebhookSettings | None = Field(default=None, description="POST the event.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = [name for name in ("channel", "start_job", "webhook") if getattr(self, name)]
        if len(given) != 1:
            raise_problems(
                "Target",
                [Problem((), "target", "a target has exactly one of channel, start_job, webhook")],
            )
        return self

    def key(self, index: int) -> str:
        """Return the target's stable name inside its rule (for deliveries and dedup keys)."""
        if self.channel is not None:
            return f"channel:{self.channel}"
        if self.start_job is not None and self.start_job.destination_vault is not None:
            return f"start_job:{self.start_job.kind}:{self.start_job.destination_vault}"
        if self.start_job is not None:
            return f"start_job:{self.start_job.kind}"
        return f"webhook:{index}"


class DeliveryRetry(ConfigModel):
    """How a target's delivery is retried before a dead-letter record is kept."""

    max_attempts: int = Field(default=5, ge=1, le=100, description="Attempts in all.")
    interval_seconds: int = Field(
        default=30, ge=1, le=86_400, description="Wait before the first retry."
    )
    backoff_rate: float = Field(default=2.0, ge=1.0, le=10.0, description="Growth of the wait.")
    max_event_age_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="An event older than this is dead-lettered instead of delivered.",
    )


class EventRule(ConfigModel):
    """An event pattern and the targets its events go to."""

    name: Name = Field(description="The rule's name (unique), used in dedup keys.")
    pattern: EventPattern = Field(
        default_factory=EventPattern, description="Which events the rule takes."
    )
    targets: list[Target] = Field(min_length=1, description="Where matched events go.")
    severity: Severity | None = Field(
        default=None, description="Override the events' own severity for this rule."
    )
    retry: DeliveryRetry = Field(
        default_factory=DeliveryRetry, description="Retry policy of every target."
    )


class NotificationsConfig(ConfigModel):
    """Channels and the event rules that route events to them."""

    channels: dict[Name, Channel] = Field(default_factory=dict, description="Channels by name.")
    rules: list[EventRule] = Field(default_factory=list, description="Event rules, in order.")

    @model_validator(mode="after")
    def _references(self) -> NotificationsConfig:
        problems = [
            Problem(("rules", index, "name"), "duplicate", f"rule {name!r} is named twice")
            for index, name in repeats([rule.name for rule in self.rules])
        ]
        for rule_index, rule in enumerate(self.rules):
            for target_index, target in enumerate(rule.targets):
                if target.channel is not None and target.channel not in self.channels:
                    known = ", ".join(sorted(self.channels)) or "none are declared"
                    problems.append(
                        Problem(
                            ("rules", rule_index, "targets", target_index, "channel"),
                            "unknown_channel",
                            f"no channel named {target.channel!r} (channels: {known})",
                        )
                    )
        raise_problems("NotificationsConfig", problems)
        return self


Tier = Literal["warm", "cold"]


def _aws_list_prices() -> dict[Tier, float]:
    return {"warm": 0.05, "cold": 0.01}


class MetricsConfig(ConfigModel):
    """What the Prometheus metrics need beyond the catalog: storage prices."""

    prices_per_gb_month: dict[Tier, float] = Field(
        default_factory=_aws_list_prices,
        description="USD per GB-month by tier, for `strongroom_storage_monthly_cost_dollars` "
        "(default: AWS Backup's list prices, warm 0.05 and cold 0.01).",
    )


class MonitorResource(ConfigModel):
    """A resource's own thresholds, over the monitor's defaults."""

    backup_age_hours: float | None = Field(
        default=None, gt=0, le=24 * 366, description="Alert when its newest point is older."
    )


class MonitorConfig(ConfigModel):
    """The thresholds of ``strongroom monitor`` (docs/monitor.md)."""

    backup_age_hours: float = Field(
        default=24, gt=0, le=24 * 366, description="Alert when a resource's newest point is older."
    )
    resources: dict[Name, MonitorResource] = Field(
        default_factory=dict, description="Per-resource thresholds, by resource name."
    )
    failure_window_hours: float = Field(
        default=24, gt=0, le=24 * 31, description="Alert on jobs that failed within this window."
    )
    storage_bytes: dict[Name, int] = Field(
        default_factory=dict, description="Alert when a vault stores more bytes than this."
    )
    verification_max_age_days: float = Field(
        default=7,
        gt=0,
        le=366,
        description="Alert when a resource's points were last verified longer ago than this "
        "(or never, once its oldest live point is that old).",
    )
    replication_lag_hours: float = Field(
        default=24,
        gt=0,
        le=24 * 366,
        description="Alert when a recovery point has waited longer than this for its copy in "
        "a copy pair's destination vault (`strongroom_replication_lag_seconds`).",
    )
    lifecycle_run_max_age_hours: float = Field(
        default=6,
        gt=0,
        le=24 * 31,
        description="Alert when the lifecycle runner (strongroom serve runs it hourly, or "
        "`lifecycle run`) last ran over every vault longer ago than this (or never, once a "
        "point with a lifecycle is that old).",
    )
    gc_max_age_days: float = Field(
        default=7,
        gt=0,
        le=366,
        description="Alert when a vault lost recovery points longer ago than this and its "
        "garbage collection (`vault gc`, `lifecycle run --gc`) has not run since.",
    )
    lifecycle_grace_hours: float = Field(
        default=2,
        gt=0,
        le=24 * 31,
        description="Alert when a point's cold move or deletion is overdue by more than this.",
    )
    dead_mans_switch_url: HttpUrl | None = Field(
        default=None,
        description="Pinged (GET) after every pass that found nothing alerting, so an outside "
        "service notices when strongroom stops.",
    )

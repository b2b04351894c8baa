"""The configuration model: one :class:`StrongroomConfig` per strongroom installation.

The tree (details in the section modules)::

    StrongroomConfig
    ├── version        1
    ├── catalog        CatalogConfig: url (None: SQLite under STRONGROOM_HOME), password ref
    ├── retry          RetryPolicy: max_attempts 3, interval_seconds 300, backoff_rate 2.0
    ├── concurrency    ConcurrencyConfig: global, per_vault, per_resource_type
    ├── vaults         name -> VaultConfig          (vaults.py)
    │                  url, key provider, s3, lock, cold_tier, chunking, pack size, compression
    ├── resources      name -> ResourceConfig       (resources.py)
    │                  one model per type: postgres, mysql, redis, kafka, kubernetes, files,
    │                  sqlite; each with tags
    ├── plans          name -> PlanConfig           (plans.py)
    │                  rules [BackupRule: schedule, windows, target_vault, lifecycle,
    │                  recovery_point_tags, copy_actions, allow_partial, missed_run_policy,
    │                  retry], selections [Selection], retry, tags
    ├── notifications  NotificationsConfig          (notifications.py)
    │                  channels (apprise, email, pagerduty, webhook), event rules
    ├── metrics        MetricsConfig                (notifications.py): storage prices
    ├── monitor        MonitorConfig                (notifications.py): alert thresholds
    └── reports        ReportsConfig                (reports.py): scheduled compliance reports

Validating a :class:`StrongroomConfig` also runs :func:`~strongroom.config.checks.check_references`
(unless the validation context sets :data:`SKIP_REFERENCE_CHECKS`, which the file loader does
to report those findings with line numbers itself).
"""

from __future__ import annotations

from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from strongroom.config.checks import check_event_targets, check_references
from strongroom.config.issues import Finding
from strongroom.config.notifications import MetricsConfig, MonitorConfig, NotificationsConfig
from strongroom.config.plans import (
    BackupRule,
    CopyAction,
    Lifecycle,
    PlanConfig,
    RetryOverride,
    RetryPolicy,
    Selection,
    TagConditions,
    TagPair,
)
from strongroom.config.reports import ReportsConfig
from strongroom.config.resources import (
    FilesResource,
    KafkaResource,
    KubernetesResource,
    MysqlResource,
    PostgresResource,
    RedisResource,
    ResourceConfig,
    ResourceType,
    SqliteResource,
)
from strongroom.config.types import ConfigModel, Name, Problem, SecretRef, raise_problems
from strongroom.config.vaults import (
    ChunkingSettings,
    ColdTier,
    CompressionSettings,
    EnvKey,
    KeyFileKey,
    KeyProvider,
    NoColdTier,
    PassphraseKey,
    S3Options,
    SameStoreColdTier,
    SeparateStoreColdTier,
    VaultConfig,
    VaultLock,
)

SKIP_REFERENCE_CHECKS: Final = "strongroom.skip_reference_checks"
"""Validation-context key: when true, cross-section checks are left to the caller."""


class CatalogConfig(ConfigModel):
    """Where jobs, runs and recovery points are recorded."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL: postgresql+psycopg://user@host/db or sqlite:////path; "
        "unset uses SQLite under STRONGROOM_HOME.",
    )
    password: SecretRef | None = Field(
        default=None, description="Reference to the database password (never in the URL)."
    )

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            has_password = parts.password is not None
        except ValueError:
            raise ValueError("not a valid URL") from None
        dialect = parts.scheme.partition("+")[0]
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError("the catalog runs on sqlite:// or postgresql:// URLs")
        if has_password:
            raise ValueError("no password in the URL; put a reference in catalog.password")
        return value


class ConcurrencyConfig(ConfigModel):
    """How many jobs run at once.

    The YAML key ``global`` is a Python keyword, so the attribute is ``global_``; only the
    YAML spelling is accepted as input, as in the JSON Schema.
    """

    global_: int = Field(
        default=4, alias="global", ge=1, le=1024, description="Jobs running at once, in all."
    )
    per_vault: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Jobs writing to one vault at once; unset for no limit below global.",
    )
    per_resource_type: dict[ResourceType, int] = Field(
        default_factory=dict,
        description="Jobs of one resource type at once (e.g. postgres: 2); absent types are "
        "limited by global only.",
    )

    @field_validator("per_resource_type")
    @classmethod
    def _positive(cls, value: dict[ResourceType, int]) -> dict[ResourceType, int]:
        raise_problems(
            "ConcurrencyConfig",
            [
                Problem((kind,), "positive", "a limit is at least 1")
                for kind, limit in value.items()
                if limit < 1
            ],
        )
        return value


class StrongroomConfig(ConfigModel):
    """A whole strongroom configuration file."""

    version: Literal[1] = Field(default=1, description="Configuration format version.")
    catalog: CatalogConfig = Field(
        default_factory=CatalogConfig, description="Where jobs and recovery points are recorded."
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy,
        description="Default retry policy; plans and rules may override fields of it.",
    )
    concurrency: ConcurrencyConfig = Field(
        default_factory=ConcurrencyConfig,
        description="Limits on jobs running at the same time (globally, per vault, per type).",
    )
    vaults: dict[Name, VaultConfig] = Field(
        default_factory=dict, description="Vaults by name: where recovery points are stored."
    )
    resources: dict[Name, ResourceConfig] = Field(
        default_factory=dict, description="Resources by name: what is backed up."
    )
    plans: dict[Name, PlanConfig] = Field(
        default_factory=dict, description="Backup plans by name: when, where and what."
    )
    notifications: NotificationsConfig = Field(
        default_factory=NotificationsConfig,
        description="Notification channels and the event rules routing events to them "
        "and to follow-up jobs (docs/notifications.md).",
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig,
        description="Settings of the Prometheus metrics (docs/metrics.md): storage prices.",
    )
    monitor: MonitorConfig = Field(
        default_factory=MonitorConfig,
        description="Thresholds of `strongroom monitor` (docs/monitor.md).",
    )
    reports: ReportsConfig = Field(
        default_factory=ReportsConfig,
        description="Compliance reports the daemon generates on a schedule and delivers "
        "through the notification channels (docs/compliance.md).",
    )

    @model_validator(mode="after")
    def _report_channels(self) -> StrongroomConfig:
        problems: list[Problem] = []
        for index, rule in enumerate(self.reports.rules):
            for position, name in enumerate(rule.channels):
                channel = self.notifications.channels.get(name)
                where = ("reports", "rules", index, "channels", position)
                if channel is None:
                    known = ", ".join(sorted(self.notifications.channels)) or "none are declared"
                    problems.append(
                        Problem(where, "unknown_channel", f"no channel named {name!r} ({known})")
                    )
                elif channel.type == "pagerduty":
                    problems.append(
                        Problem(
                            where,
                            "channel_type",
                            f"channel {name!r} pages PagerDuty; a report goes to an email, "
                            "apprise or webhook channel",
                        )
                    )
        raise_problems("StrongroomConfig", problems)
        return self

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> StrongroomConfig:
        context: Any = info.context
        if isinstance(context, dict) and context.get(SKIP_REFERENCE_CHECKS):
            return self
        errors = [finding for finding in self.findings() if finding.severity == "error"]
        raise_problems(
            "StrongroomConfig",
            [Problem(error.location, error.code, error.message) for error in errors],
        )
        return self

    def findings(self) -> list[Finding]:
        """Return the cross-section errors and warnings of this configuration."""
        return [
            *check_references(self.vaults, self.resources, self.plans),
            *check_event_targets(self.notifications, self.vaults),
        ]

    def warnings(self) -> list[Finding]:
        """Return the warnings (e.g. a selection matching no resource) of this configuration."""
        return [finding for finding in self.findings() if finding.severity == "warning"]

    def retry_for(self, plan_name: str, rule_name: str) -> RetryPolicy:
        """Return the retry policy of a rule: the default, then the plan's, then the rule's.

        Raises :class:`KeyError` for an unknown plan or rule.
        """
        plan = self.plans[plan_name]
        policy = self.retry
        if plan.retry is not None:
            policy = plan.retry.apply_to(policy)
        rule = plan.rule(rule_name)
        if rule.retry is not None:
            policy = rule.retry.apply_to(policy)
        return policy


__all__ = [
    "BackupRule",
    "CatalogConfig",
    "ChunkingSettings",
    "ColdTier",
    "CompressionSettings",
    "ConcurrencyConfig",
    "CopyAction",
    "EnvKey",
    "FilesResource",
    "KafkaResource",
    "KeyFileKey",
    "KeyProvider",
    "KubernetesResource",
    "Lifecycle",
    "MetricsConfig",
    "MonitorConfig",
    "MysqlResource",
    "NoColdTier",
    "NotificationsConfig",
    "PassphraseKey",
    "PlanConfig",
    "PostgresResource",
    "RedisResource",
    "ResourceConfig",
    "ResourceType",
    "RetryOverride",
    "RetryPolicy",
    "S3Options",
    "SameStoreColdTier",
    "Selection",
    "SeparateStoreColdTier",
    "SqliteResource",
    "StrongroomConfig",
    "TagConditions",
    "TagPair",
    "VaultConfig",
    "VaultLock",
]

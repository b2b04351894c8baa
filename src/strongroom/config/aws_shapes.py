"""The AWS Backup document shapes strongroom reads (PascalCase, as the AWS API writes them).

- ``BackupPlan`` as in ``aws backup create-backup-plan`` input and the seed document,
  alone or wrapped in the output of ``aws backup get-backup-plan`` (``BackupPlanId``,
  ``BackupPlanArn``, ``VersionId``, ``CreationDate`` … are metadata, accepted and ignored);
- ``BackupSelection`` / ``BackupSelections`` (bare, or as ``get-backup-selection`` prints
  them) next to the plan.

Fields strongroom cannot honour are declared here so that they are recognised and then
refused by name (see :data:`UNSUPPORTED_FIELDS`); unknown fields are errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

UNSUPPORTED_FIELDS: Final[dict[str, str]] = {
    "EnableContinuousBackup": "continuous backup for point-in-time restore",
    "IndexActions": "backup indexes for item-level search",
    "ScanActions": "malware scans of recovery points",
    "ScanSettings": "malware scan settings",
    "AdvancedBackupSettings": "resource-type specific backup options (e.g. Windows VSS)",
    "TargetLogicallyAirGappedBackupVaultArn": "logically air-gapped vaults",
}
"""AWS fields strongroom refuses when they ask for something, and what they ask for."""

METADATA: Final = "Metadata written by AWS; accepted and ignored."


class AwsModel(BaseModel):
    """Base of the AWS shapes: unknown keys are errors, inputs stay out of error text."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class AwsLifecycle(AwsModel):
    """AWS ``Lifecycle``."""

    MoveToColdStorageAfterDays: int | None = Field(
        default=None, description="Days before moving to cold storage."
    )
    DeleteAfterDays: int | None = Field(default=None, description="Days before deletion.")
    OptInToArchiveForSupportedResources: bool | None = Field(
        default=None,
        description="AWS: also tier resource types that need opting in; strongroom tiers "
        "every resource type, so either value is honoured.",
    )


class AwsCopyAction(AwsModel):
    """AWS ``CopyAction``."""

    DestinationBackupVaultArn: str = Field(description="ARN (or name) of the destination vault.")
    Lifecycle: AwsLifecycle | None = Field(default=None, description="Lifecycle of the copy.")


class AwsRule(AwsModel):
    """AWS ``BackupRule`` / ``BackupRuleInput``."""

    RuleName: str = Field(description="Rule name.")
    TargetBackupVault: str | None = Field(
        default=None, description="Target vault name (CloudFormation / seed spelling)."
    )
    TargetBackupVaultName: str | None = Field(
        default=None, description="Target vault name (API spelling)."
    )
    ScheduleExpression: str | None = Field(
        default=None, description="cron(...) expression; AWS default cron(0 5 ? * * *)."
    )
    ScheduleExpressionTimezone: str | None = Field(
        default=None, description="IANA time zone; AWS default UTC."
    )
    StartWindowMinutes: int | None = Field(
        default=None, description="Start window; AWS default 480 (8 hours)."
    )
    CompletionWindowMinutes: int | None = Field(
        default=None, description="Completion window; AWS default 10080 (7 days)."
    )
    Lifecycle: AwsLifecycle | None = Field(default=None, description="Lifecycle.")
    RecoveryPointTags: dict[str, str] | None = Field(
        default=None, description="Tags of the recovery points."
    )
    CopyActions: list[AwsCopyAction] | None = Field(default=None, description="Copy actions.")
    RuleId: str | None = Field(default=None, description=METADATA)
    EnableContinuousBackup: bool | None = Field(default=None, description="Refused when true.")
    IndexActions: list[Any] | None = Field(default=None, description="Refused when not empty.")
    ScanActions: list[Any] | None = Field(default=None, description="Refused when not empty.")
    TargetLogicallyAirGappedBackupVaultArn: str | None = Field(
        default=None, description="Refused when set."
    )


class AwsPlan(AwsModel):
    """AWS ``BackupPlan`` / ``BackupPlanInput`` (``Name`` is the seed's spelling)."""

    BackupPlanName: str | None = Field(default=None, description="Plan name (API spelling).")
    Name: str | None = Field(default=None, description="Plan name (seed spelling).")
    Rules: list[AwsRule] = Field(min_length=1, description="Backup rules.")
    AdvancedBackupSettings: list[Any] | None = Field(
        default=None, description="Refused when not empty."
    )
    ScanSettings: list[Any] | None = Field(default=None, description="Refused when not empty.")


class AwsTagCondition(AwsModel):
    """One entry of ``ListOfTags``."""

    ConditionType: Literal["STRINGEQUALS"] = Field(
        default="STRINGEQUALS", description="Only STRINGEQUALS exists."
    )
    ConditionKey: str = Field(description="Tag key (optionally aws:ResourceTag/KEY).")
    ConditionValue: str = Field(description="Tag value.")


class AwsConditionParameter(AwsModel):
    """One entry of a ``Conditions`` operator list."""

    ConditionKey: str = Field(description="aws:ResourceTag/KEY (or KEY).")
    ConditionValue: str = Field(description="Tag value or pattern.")


class AwsConditions(AwsModel):
    """AWS ``Conditions`` (all must hold)."""

    StringEquals: list[AwsConditionParameter] | None = Field(default=None, description="Equal.")
    StringNotEquals: list[AwsConditionParameter] | None = Field(
        default=None, description="Not equal."
    )
    StringLike: list[AwsConditionParameter] | None = Field(default=None, description="Like.")
    StringNotLike: list[AwsConditionParameter] | None = Field(default=None, description="Not like.")


class AwsSelection(AwsModel):
    """AWS ``BackupSelection``."""

    SelectionName: str = Field(description="Selection name.")
    IamRoleArn: str | None = Field(
        default=None, description="IAM role; strongroom has its own access control. " + METADATA
    )
    Resources: list[str] | None = Field(default=None, description="Resource ARNs or '*'.")
    NotResources: list[str] | None = Field(default=None, description="Excluded resource ARNs.")
    ListOfTags: list[AwsTagCondition] | None = Field(
        default=None, description="Tags, any of which selects."
    )
    Conditions: AwsConditions | None = Field(default=None, description="Conditions, all hold.")


class AwsSelectionEnvelope(AwsModel):
    """A selection as ``aws backup get-backup-selection`` prints it."""

    BackupSelection: AwsSelection = Field(description="The selection.")
    SelectionId: str | None = Field(default=None, description=METADATA)
    BackupPlanId: str | None = Field(default=None, description=METADATA)
    CreationDate: Any = Field(default=None, description=METADATA)
    CreatorRequestId: str | None = Field(default=None, description=METADATA)


def _selection_kind(value: Any) -> str:
    return "envelope" if isinstance(value, dict) and "BackupSelection" in value else "selection"


SelectionItem = Annotated[
    Annotated[AwsSelection, Tag("selection")] | Annotated[AwsSelectionEnvelope, Tag("envelope")],
    Discriminator(_selection_kind),
]


class AwsPlanDocument(AwsModel):
    """A plan document: the plan, optional selections, and get-backup-plan metadata."""

    BackupPlan: AwsPlan = Field(description="The plan.")
    BackupPlanTags: dict[str, str] | None = Field(default=None, description="Tags of the plan.")
    BackupSelection: AwsSelection | None = Field(default=None, description="One selection.")
    BackupSelections: list[SelectionItem] | None = Field(
        default=None, description="Several selections."
    )
    AdvancedBackupSettings: list[Any] | None = Field(
        default=None, description="Refused when not empty."
    )
    BackupPlanId: str | None = Field(default=None, description=METADATA)
    BackupPlanArn: str | None = Field(default=None, description=METADATA)
    VersionId: str | None = Field(default=None, description=METADATA)
    CreatorRequestId: str | None = Field(default=None, description=METADATA)
    CreationDate: Any = Field(default=None, description=METADATA)
    DeletionDate: Any = Field(default=None, description=METADATA)
    LastExecutionDate: Any = Field(default=None, description=METADATA)
    ScheduledRunsPreview: Any = Field(default=None, description=METADATA)
    ResponseMetadata: Any = Field(default=None, description=METADATA)

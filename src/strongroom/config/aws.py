"""AWS Backup plan documents as input: detect them, convert them to strongroom plans.

Accepted shapes (YAML or JSON): ``{BackupPlan: {...}}`` as in the seed and
``create-backup-plan``, the full ``get-backup-plan`` output around it, or the bare plan
object (``{BackupPlanName, Rules}``) that ``create-backup-plan --backup-plan file://…``
reads; optionally with ``BackupSelection`` / ``BackupSelections``.

Conversion follows AWS semantics where AWS leaves a field out: schedule ``cron(0 5 ? * *
*)``, start window 480 minutes, completion window 10080 minutes. Vault ARNs
(``arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME``) become vault names, resource ARNs
become resource names (their last segment). Fields strongroom cannot honour are refused by
name (:class:`~strongroom.errors.UnsupportedError`), never ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import ValidationError

from strongroom.config.aws_shapes import (
    UNSUPPORTED_FIELDS,
    AwsConditions,
    AwsLifecycle,
    AwsPlanDocument,
    AwsRule,
    AwsSelection,
    AwsSelectionEnvelope,
)
from strongroom.config.issues import (
    UNSUPPORTED,
    ConfigIssue,
    Finding,
    error_for,
    findings_from_validation_error,
    format_path,
)
from strongroom.config.models import SKIP_REFERENCE_CHECKS, StrongroomConfig
from strongroom.config.plans import PlanConfig
from strongroom.config.types import Location
from strongroom.errors import ConfigError

DocumentKind = Literal["strongroom", "aws-backup-plan"]

AWS_DEFAULT_SCHEDULE: Final = "cron(0 5 ? * * *)"
AWS_DEFAULT_START_WINDOW_MINUTES: Final = 480
AWS_DEFAULT_COMPLETION_WINDOW_MINUTES: Final = 10_080

_VAULT_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:backup:[a-z0-9-]*:[0-9]*:backup-vault:(?P<name>[A-Za-z0-9_.-]+)"
)
_TAG_KEY_PREFIX: Final = "aws:ResourceTag/"
_CONDITION_OPERATORS: Final = {
    "StringEquals": "string_equals",
    "StringNotEquals": "string_not_equals",
    "StringLike": "string_like",
    "StringNotLike": "string_not_like",
}


def detect_document_kind(data: object) -> DocumentKind:
    """Tell a strongroom configuration from an AWS Backup plan document (parsed data)."""
    if isinstance(data, Mapping) and (
        "BackupPlan" in data or ("Rules" in data and ("BackupPlanName" in data or "Name" in data))
    ):
        return "aws-backup-plan"
    return "strongroom"


def vault_name_from_arn(value: str) -> str:
    """Return the vault name of ``arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME``.

    A plain vault name is returned as is; raises :class:`~strongroom.errors.ConfigError`
    for any other ARN.
    """
    if not value.startswith("arn:"):
        return value
    match = _VAULT_ARN.fullmatch(value)
    if match is None:
        raise ConfigError(
            f"{value!r} is not a backup vault ARN (arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME)"
        )
    return match["name"]


@dataclass(frozen=True, slots=True)
class AwsConversion:
    """The result of reading an AWS plan document.

    ``findings`` are located in the document as given; ``plan`` is set only when there is
    no error. ``vaults`` and ``resources`` are the names the plan refers to.
    """

    plan_name: str | None
    plan: PlanConfig | None
    findings: list[Finding]
    vaults: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()


def _refused(location: Location, name: str, boolean: bool = False) -> Finding:
    remedy = "remove it or set it to false" if boolean else "remove it"
    return Finding(
        location,
        UNSUPPORTED,
        f"strongroom cannot honour {name} ({UNSUPPORTED_FIELDS[name]}); {remedy}",
    )


def _unsupported(document: AwsPlanDocument) -> list[Finding]:
    findings: list[Finding] = []
    if document.AdvancedBackupSettings:
        findings.append(_refused(("AdvancedBackupSettings",), "AdvancedBackupSettings"))
    plan = document.BackupPlan
    for name in ("AdvancedBackupSettings", "ScanSettings"):
        if getattr(plan, name):
            findings.append(_refused(("BackupPlan", name), name))
    for index, rule in enumerate(plan.Rules):
        where: Location = ("BackupPlan", "Rules", index)
        if rule.EnableContinuousBackup:
            findings.append(
                _refused((*where, "EnableContinuousBackup"), "EnableContinuousBackup", True)
            )
        for name in ("IndexActions", "ScanActions", "TargetLogicallyAirGappedBackupVaultArn"):
            if getattr(rule, name):
                findings.append(_refused((*where, name), name))
    return findings


@dataclass
class _Converter:
    """Builds the strongroom plan and remembers where each converted value came from."""

    plan_name: str
    origins: dict[Location, Location] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    vaults: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)

    def at(self, *location: str | int) -> Location:
        return ("plans", self.plan_name, *location)

    def origin_of(self, location: Location) -> Location:
        """Return the document location a converted location came from (longest prefix)."""
        for length in range(len(location), -1, -1):
            origin = self.origins.get(location[:length])
            if origin is not None:
                return origin
        return ()

    def vault(self, value: str, source: Location) -> str | None:
        try:
            name = vault_name_from_arn(value)
        except ConfigError as exc:
            self.findings.append(Finding(source, "vault_arn", exc.message))
            return None
        self.vaults.append(name)
        return name

    def lifecycle(
        self, lifecycle: AwsLifecycle | None, target: Location, source: Location
    ) -> dict[str, int]:
        self.origins[target] = source
        self.origins[(*target, "move_to_cold_after_days")] = (
            *source,
            "MoveToColdStorageAfterDays",
        )
        self.origins[(*target, "delete_after_days")] = (*source, "DeleteAfterDays")
        result: dict[str, int] = {}
        if lifecycle is not None:
            if lifecycle.MoveToColdStorageAfterDays is not None:
                result["move_to_cold_after_days"] = lifecycle.MoveToColdStorageAfterDays
            if lifecycle.DeleteAfterDays is not None:
                result["delete_after_days"] = lifecycle.DeleteAfterDays
        return result

    def rule(self, rule: AwsRule, index: int) -> dict[str, Any]:
        source: Location = ("BackupPlan", "Rules", index)
        target = self.at("rules", index)
        self.origins[target] = source
        vault_field = "TargetBackupVault" if rule.TargetBackupVault else "TargetBackupVaultName"
        for ours, theirs in (
            ("name", "RuleName"),
            ("schedule", "ScheduleExpression"),
            ("timezone", "ScheduleExpressionTimezone"),
            ("start_window_minutes", "StartWindowMinutes"),
            ("completion_window_minutes", "CompletionWindowMinutes"),
            ("recovery_point_tags", "RecoveryPointTags"),
            ("copy_actions", "CopyActions"),
            ("target_vault", vault_field),
        ):
            self.origins[(*target, ours)] = (*source, theirs)
        converted: dict[str, Any] = {
            "name": rule.RuleName,
            "schedule": rule.ScheduleExpression or AWS_DEFAULT_SCHEDULE,
            "start_window_minutes": rule.StartWindowMinutes or AWS_DEFAULT_START_WINDOW_MINUTES,
            "completion_window_minutes": (
                rule.CompletionWindowMinutes or AWS_DEFAULT_COMPLETION_WINDOW_MINUTES
            ),
            "lifecycle": self.lifecycle(
                rule.Lifecycle, (*target, "lifecycle"), (*source, "Lifecycle")
            ),
            "recovery_point_tags": rule.RecoveryPointTags or {},
            "copy_actions": [],
        }
        if rule.ScheduleExpressionTimezone:
            converted["timezone"] = rule.ScheduleExpressionTimezone
        if (
            rule.TargetBackupVault
            and rule.TargetBackupVaultName
            and rule.TargetBackupVault != rule.TargetBackupVaultName
        ):
            self.findings.append(
                Finding(
                    (*source, "TargetBackupVaultName"),
                    "vault_conflict",
                    "TargetBackupVault and TargetBackupVaultName name different vaults",
                )
            )
        vault_value = rule.TargetBackupVault or rule.TargetBackupVaultName
        if vault_value:
            vault = self.vault(vault_value, (*source, vault_field))
            if vault is not None:
                converted["target_vault"] = vault
        for copy_index, copy in enumerate(rule.CopyActions or []):
            copy_source: Location = (*source, "CopyActions", copy_index)
            copy_target: Location = (*target, "copy_actions", copy_index)
            self.origins[copy_target] = copy_source
            self.origins[(*copy_target, "destination_vault")] = (
                *copy_source,
                "DestinationBackupVaultArn",
            )
            destination = self.vault(
                copy.DestinationBackupVaultArn, (*copy_source, "DestinationBackupVaultArn")
            )
            converted["copy_actions"].append(
                {
                    "destination_vault": destination,
                    "lifecycle": self.lifecycle(
                        copy.Lifecycle, (*copy_target, "lifecycle"), (*copy_source, "Lifecycle")
                    ),
                }
            )
        return converted

    def resource_names(
        self, values: list[str] | None, target: Location, source: Location
    ) -> list[str]:
        self.origins[target] = source
        names: list[str] = []
        for index, value in enumerate(values or []):
            if value != "*" and "*" in value:
                self.findings.append(
                    Finding(
                        (*source, index),
                        UNSUPPORTED,
                        f"strongroom cannot honour the resource pattern {value!r}: it selects "
                        "AWS resource types; name the resources, or select them with "
                        "list_of_tags or resource_types",
                    )
                )
                continue
            name = re.split(r"[:/]", value)[-1] if value.startswith("arn:") else value
            self.origins[(*target, len(names))] = (*source, index)
            names.append(name)
            if name != "*":
                self.resources.append(name)
        return names

    def tag_key(self, key: str, source: Location) -> str:
        if key.startswith(_TAG_KEY_PREFIX):
            return key.removeprefix(_TAG_KEY_PREFIX)
        if key.startswith("aws:"):
            self.findings.append(
                Finding(
                    source,
                    UNSUPPORTED,
                    f"strongroom cannot honour the condition key {key!r}: only resource tags "
                    f"({_TAG_KEY_PREFIX}KEY) select resources",
                )
            )
        return key

    def conditions(
        self, conditions: AwsConditions | None, target: Location, source: Location
    ) -> dict[str, list[dict[str, str]]]:
        self.origins[target] = source
        converted: dict[str, list[dict[str, str]]] = {}
        for theirs, ours in _CONDITION_OPERATORS.items():
            parameters = getattr(conditions, theirs) if conditions is not None else None
            self.origins[(*target, ours)] = (*source, theirs)
            converted[ours] = []
            for index, parameter in enumerate(parameters or []):
                where: Location = (*source, theirs, index)
                self.origins[(*target, ours, index)] = where
                self.origins[(*target, ours, index, "key")] = (*where, "ConditionKey")
                self.origins[(*target, ours, index, "value")] = (*where, "ConditionValue")
                converted[ours].append(
                    {
                        "key": self.tag_key(parameter.ConditionKey, (*where, "ConditionKey")),
                        "value": parameter.ConditionValue,
                    }
                )
        return converted

    def selection(self, selection: AwsSelection, index: int, source: Location) -> dict[str, Any]:
        target = self.at("selections", index)
        self.origins[target] = source
        self.origins[(*target, "name")] = (*source, "SelectionName")
        self.origins[(*target, "list_of_tags")] = (*source, "ListOfTags")
        tags: list[dict[str, str]] = []
        for tag_index, tag in enumerate(selection.ListOfTags or []):
            where: Location = (*source, "ListOfTags", tag_index)
            self.origins[(*target, "list_of_tags", tag_index)] = where
            self.origins[(*target, "list_of_tags", tag_index, "key")] = (*where, "ConditionKey")
            self.origins[(*target, "list_of_tags", tag_index, "value")] = (
                *where,
                "ConditionValue",
            )
            tags.append(
                {
                    "key": self.tag_key(tag.ConditionKey, (*where, "ConditionKey")),
                    "value": tag.ConditionValue,
                }
            )
        return {
            "name": selection.SelectionName,
            "names": self.resource_names(
                selection.Resources, (*target, "names"), (*source, "Resources")
            ),
            "not_names": self.resource_names(
                selection.NotResources, (*target, "not_names"), (*source, "NotResources")
            ),
            "list_of_tags": tags,
            "conditions": self.conditions(
                selection.Conditions, (*target, "conditions"), (*source, "Conditions")
            ),
        }


def _selections(document: AwsPlanDocument) -> list[tuple[AwsSelection, Location]]:
    found: list[tuple[AwsSelection, Location]] = []
    if document.BackupSelection is not None:
        found.append((document.BackupSelection, ("BackupSelection",)))
    for index, item in enumerate(document.BackupSelections or []):
        if isinstance(item, AwsSelectionEnvelope):
            found.append((item.BackupSelection, ("BackupSelections", index, "BackupSelection")))
        else:
            found.append((item, ("BackupSelections", index)))
    return found


def _plan_name(document: AwsPlanDocument) -> tuple[str | None, Finding | None]:
    plan = document.BackupPlan
    if plan.BackupPlanName and plan.Name and plan.BackupPlanName != plan.Name:
        return None, Finding(
            ("BackupPlan", "Name"), "plan_name", "BackupPlanName and Name differ; keep one"
        )
    name = plan.BackupPlanName or plan.Name
    if not name:
        return None, Finding(("BackupPlan", "BackupPlanName"), "missing", "required key is missing")
    return name, None


def analyse_aws_document(data: Mapping[str, Any]) -> AwsConversion:
    """Validate an AWS plan document and convert it, collecting every problem.

    Never raises for a bad document: problems come back as findings located in ``data``.
    """
    bare = "BackupPlan" not in data
    document_data: Mapping[str, Any] = {"BackupPlan": data} if bare else data

    def located(findings: list[Finding]) -> list[Finding]:
        if not bare:
            return findings
        return [
            Finding(f.location[1:], f.code, f.message, f.severity)
            if f.location[:1] == ("BackupPlan",)
            else f
            for f in findings
        ]

    try:
        document = AwsPlanDocument.model_validate(document_data)
    except ValidationError as exc:
        return AwsConversion(
            None,
            None,
            located(findings_from_validation_error(exc, AwsPlanDocument)),
        )
    findings = _unsupported(document)
    plan_name, name_problem = _plan_name(document)
    if name_problem is not None or plan_name is None:
        problems = [name_problem] if name_problem is not None else []
        return AwsConversion(None, None, located([*findings, *problems]))
    converter = _Converter(plan_name)
    converter.origins[("plans", plan_name)] = ("BackupPlan", "BackupPlanName")
    converter.origins[("plans", plan_name, "rules")] = ("BackupPlan", "Rules")
    converter.origins[("plans", plan_name, "tags")] = ("BackupPlanTags",)
    converter.origins[("plans", plan_name, "selections")] = ()
    raw_plan = {
        "rules": [
            converter.rule(rule, index) for index, rule in enumerate(document.BackupPlan.Rules)
        ],
        "selections": [
            converter.selection(selection, index, source)
            for index, (selection, source) in enumerate(_selections(document))
        ],
        "tags": document.BackupPlanTags or {},
    }
    findings += converter.findings
    converted = {"plans": {plan_name: raw_plan}}
    plan: PlanConfig | None = None
    try:
        config = StrongroomConfig.model_validate(converted, context={SKIP_REFERENCE_CHECKS: True})
        plan = config.plans[plan_name]
    except ValidationError as exc:
        reported = {finding.location for finding in findings}
        for finding in findings_from_validation_error(exc, StrongroomConfig):
            origin = converter.origin_of(finding.location)
            if origin not in reported:  # a value the converter already refused
                findings.append(Finding(origin, finding.code, finding.message, finding.severity))
    has_errors = any(f.severity == "error" for f in findings)
    return AwsConversion(
        plan_name,
        None if has_errors else plan,
        located(findings),
        tuple(dict.fromkeys(converter.vaults)),
        tuple(dict.fromkeys(converter.resources)),
    )


def plan_from_aws(data: Mapping[str, Any], source: str = "<aws plan>") -> tuple[str, PlanConfig]:
    """Convert an AWS Backup plan document (parsed) to a strongroom plan: ``(name, plan)``.

    Raises :class:`~strongroom.errors.UnsupportedError` when it asks for a feature
    strongroom cannot honour (naming each field), :class:`~strongroom.errors.ConfigError`
    for any other problem; either message lists every problem.
    """
    conversion = analyse_aws_document(data)
    if conversion.plan is None or conversion.plan_name is None:
        issues = [
            ConfigIssue(format_path(f.location), f.message, None, f.severity, f.code)
            for f in conversion.findings
        ]
        raise error_for(source, issues)
    return conversion.plan_name, conversion.plan
